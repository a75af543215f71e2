"""The agent protocol's paths, as the reference controller serves them (with and without `device/`)."""

from django.urls import path

from . import agent

ENDPOINTS = [
    ("register/", agent.register, "register"),
    ("checksum/<str:device_id>/", agent.checksum, "checksum"),
    ("download-config/<str:device_id>/", agent.download_config, "download-config"),
    ("report-status/<str:device_id>/", agent.report_status, "report-status"),
    ("update-info/<str:device_id>/", agent.update_info, "update-info"),
]

app_name = "controller-agent"

urlpatterns = [path(f"device/{route}", view, name=f"device-{name}") for route, view, name in ENDPOINTS] + [
    path(route, view, name=name)
    for route, view, name in ENDPOINTS  # the paths the current agent calls
]

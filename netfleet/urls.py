from django.contrib import admin
from django.urls import include, path

from netfleet.accounts.api import auth
from netfleet.core import views as core_views

api_v1 = [
    # URL resolution tries patterns in order: the device list first (the API's hottest list), then monitoring (metric
    # ingest from devices is answered before URL resolution, netfleet.wsgi, but charts and lists are frequent)
    path("", include("netfleet.controller.api.urls")),  # controller/… and devices/
    path("", include("netfleet.monitoring.api.urls")),
    path("health/", core_views.HealthView.as_view(), name="health"),
    path("openapi.json/", core_views.SchemaView.as_view(), name="openapi"),
    path("docs/", core_views.SwaggerView.as_view(url_name="openapi"), name="docs"),
    path("redoc/", core_views.RedocView.as_view(url_name="openapi"), name="redoc"),
    path("", include("netfleet.accounts.api.urls")),
    # each app's api/urls.py declares its full paths under /api/v1/ (several share the controller/ prefix)
    path("", include("netfleet.geo.api.urls")),
    path("", include("netfleet.connections.api.urls")),
    path("", include("netfleet.pki.api.urls")),
    path("", include("netfleet.vpn.api.urls")),
    path("", include("netfleet.gateways.api.urls")),
    path("", include("netfleet.hotspot.api.urls")),
    path("", include("netfleet.firmware.api.urls")),
]

# routers-api.txt login faces: the same login, answering {"error": "..."} on failure
users_face = [
    path("login/", auth.UsersLoginView.as_view(), name="users-login"),
    path("api-key-login/", auth.UsersApiKeyLoginView.as_view(), name="users-api-key-login"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("users/", include(users_face)),
    path("controller/", include("netfleet.controller.agent_urls")),
    path("routers/", include("netfleet.gateways.routers_urls")),  # routers-api.txt
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "netfleet.core.views.bad_request"
handler403 = "netfleet.core.views.permission_denied"
handler404 = "netfleet.core.views.page_not_found"
handler500 = "netfleet.core.views.server_error"

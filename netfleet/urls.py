from django.contrib import admin
from django.urls import include, path

from netfleet.core import views as core_views

api_v1 = [
    path("health/", core_views.HealthView.as_view(), name="health"),
    path("openapi.json/", core_views.SchemaView.as_view(), name="openapi"),
    path("docs/", core_views.SwaggerView.as_view(url_name="openapi"), name="docs"),
    path("redoc/", core_views.RedocView.as_view(url_name="openapi"), name="redoc"),
    path("", include("netfleet.accounts.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "netfleet.core.views.bad_request"
handler403 = "netfleet.core.views.permission_denied"
handler404 = "netfleet.core.views.page_not_found"
handler500 = "netfleet.core.views.server_error"

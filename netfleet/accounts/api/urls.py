from django.urls import path

from netfleet.core.api.routers import NetfleetRouter

from . import auth, views
from .directory import AuditEventViewSet, MembershipViewSet, OrganizationViewSet, UserViewSet

app_name = "accounts-api"

router = NetfleetRouter()
router.register("sites", views.SiteViewSet, basename="site")
router.register("organizations", OrganizationViewSet, basename="organization")
router.register(r"organizations/(?P<organization_id>[^/.]+)/members", MembershipViewSet, basename="organization-member")
router.register("users", UserViewSet, basename="user")
router.register("audit", AuditEventViewSet, basename="audit-event")
router.register("api-keys", auth.ApiKeyViewSet, basename="api-key")

auth_urlpatterns = [
    path("auth/login/", auth.LoginView.as_view(), name="login"),
    path("auth/login/mfa/", auth.MfaLoginView.as_view(), name="login-mfa"),
    path("auth/refresh/", auth.RefreshView.as_view(), name="refresh"),
    path("auth/logout/", auth.LogoutView.as_view(), name="logout"),
    path("auth/me/", auth.MeView.as_view(), name="me"),
    path("auth/mfa/setup/", auth.MfaSetupView.as_view(), name="mfa-setup"),
    path("auth/mfa/enable/", auth.MfaEnableView.as_view(), name="mfa-enable"),
    path("auth/mfa/disable/", auth.MfaDisableView.as_view(), name="mfa-disable"),
]

urlpatterns = auth_urlpatterns + router.urls

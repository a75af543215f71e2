"""PKI routes (controller-api.txt: CA and Cert), mounted at /api/v1/ with the spec's paths. The certificate's
`controller/cert/<common_name>/group/` is served by the controller app."""

from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "pki-api"

router = NetfleetRouter()
router.register("controller/ca", views.CaViewSet, basename="ca")
router.register("controller/cert", views.CertViewSet, basename="cert")

urlpatterns = router.urls

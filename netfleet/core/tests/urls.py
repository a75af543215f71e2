"""Test-only routes exercising the shared conventions through the real middleware and exception handler."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from netfleet.accounts.models import Organization
from netfleet.core.api.views import NetfleetReadOnlyModelViewSet
from netfleet.core.exceptions import Conflict


class OrganizationBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ("id", "name", "slug")


class ResultsListViewSet(NetfleetReadOnlyModelViewSet):
    queryset = Organization.objects.order_by("slug")
    serializer_class = OrganizationBriefSerializer
    permission_read = "device:read"


class ExplodingView(APIView):
    def get(self, request):
        raise RuntimeError("secret-token-do-not-leak")


class ConflictView(APIView):
    def post(self, request):
        raise Conflict("slug already exists")


class NestedValidationView(APIView):
    class Payload(serializers.Serializer):
        class Interface(serializers.Serializer):
            name = serializers.CharField(max_length=5)

        listen_port = serializers.IntegerField(min_value=1, max_value=65535)
        interfaces = Interface(many=True)

    def post(self, request):
        self.Payload(data=request.data).is_valid(raise_exception=True)
        return Response({"ok": True})


class UploadView(APIView):
    max_body_size = 4 * 1024 * 1024

    def post(self, request):
        return Response({"received": len(request.body)})


def plain_django_error(request):
    raise RuntimeError("secret-token-do-not-leak")


test_routes = [
    path("results/", ResultsListViewSet.as_view({"get": "list"})),
    path("explode/", ExplodingView.as_view()),
    path("conflict/", ConflictView.as_view()),
    path("validate/", NestedValidationView.as_view()),
    path("upload/", UploadView.as_view()),
    path("plain-error/", plain_django_error),
]

urlpatterns = [
    path("api/v1/test/", include(test_routes)),
    path("", include("netfleet.urls")),
]
handler404 = "netfleet.core.views.page_not_found"
handler500 = "netfleet.core.views.server_error"

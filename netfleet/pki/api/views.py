from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.api.views import NetfleetModelViewSet

from .. import filters, services
from ..models import Ca, Cert
from . import serializers

CRL_MEDIA_TYPE = "application/x-pem-file"


class PemRenderer(renderers.BaseRenderer):
    """Lets clients ask for `Accept: application/x-pem-file` (the CRL download answers with an HttpResponse)."""

    media_type = CRL_MEDIA_TYPE
    format = "crl"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class X509ViewSet(NetfleetModelViewSet):
    permission_read = "device:read"
    permission_write = "pki:write"

    def perform_update(self, serializer):
        serializer.instance = services.update_x509(obj=serializer.instance, **serializer.validated_data)

    def finalize_response(self, request, response, *args, **kwargs):
        # error answers stay JSON even when the client accepts only PEM
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(getattr(response, "accepted_renderer", None), PemRenderer):
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response


class CaViewSet(X509ViewSet):
    """Certificate authorities. POST generates a CA from the given parameters, or imports one when `certificate`
    and `private_key` are given. Once signed only `name` and `notes` change; `renew/` re-signs the CA (same
    key, new serial and validity) and every certificate it issued that is not revoked. A CA that still has
    certificates or VPN servers cannot be deleted (409)."""

    queryset = Ca.objects.all()
    serializer_class = serializers.CaSerializer
    filterset_class = filters.CaFilterSet

    def perform_create(self, serializer):
        serializer.instance = services.create_ca(**serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_ca(ca=instance)

    @extend_schema(request=None, responses=serializers.CaSerializer)
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        ca = services.renew_ca(ca=self.get_object())
        return Response(self.get_serializer(ca).data)

    @extend_schema(
        responses={(200, CRL_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="PEM CRL ({id}.crl)")}
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PemRenderer])
    def crl(self, request, pk=None):
        ca = self.get_object()
        response = HttpResponse(services.certificate_revocation_list(ca=ca), content_type=CRL_MEDIA_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{ca.pk}.crl"'
        return response


class CertViewSet(X509ViewSet):
    """Certificates issued by a CA. POST generates one signed by `ca`, or imports one (`certificate` and
    `private_key`, which must match and be issued by `ca`). `renew/` gives a new serial and validity to the same
    key; `revoke/` adds the certificate to its CA's CRL."""

    queryset = Cert.objects.select_related("ca")
    serializer_class = serializers.CertSerializer
    filterset_class = filters.CertFilterSet

    def perform_create(self, serializer):
        serializer.instance = services.create_cert(**serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_cert(cert=instance)

    @extend_schema(request=None, responses=serializers.CertSerializer)
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        cert = services.renew_cert(cert=self.get_object())
        return Response(self.get_serializer(cert).data)

    @extend_schema(request=None, responses=serializers.CertSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        cert = services.revoke_cert(cert=self.get_object())
        return Response(self.get_serializer(cert).data)

from rest_framework import exceptions, serializers

from netfleet.accounts.models import Organization
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access

from ..models import Ca, Cert

X509_FIELDS = (
    "id",
    "name",
    "organization",
    "notes",
    "key_type",
    "key_length",
    "digest",
    "validity_start",
    "validity_end",
    "country_code",
    "state",
    "city",
    "organization_name",
    "organizational_unit_name",
    "email",
    "common_name",
    "extensions",
    "serial_number",
    "certificate",
    "private_key",
    "passphrase",
)
# what may change once signed: everything else is part of the certificate
EDITABLE_FIELDS = ("name", "notes")


class X509Serializer(NetfleetModelSerializer):
    """Create (generate), import (`name`, `certificate`, `private_key` [+ `ca`]; the rest is read from the PEM)
    and describe CAs and certificates.

    Private keys: the reference API returns `private_key` in every response. netfleet returns it only in
    single-object responses (detail, create, update, renew, revoke) and only to callers holding `pki:write` in
    the object's organization (superusers for shared objects): viewers never get a key, and lists never carry
    one. `passphrase` decrypts an encrypted key on import and is never stored or returned.
    """

    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        allow_null=True,
        help_text="null shares the object with every organization (superusers only).",
    )
    private_key = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
        help_text="PEM. Returned only in single-object responses to callers with 'pki:write'.",
    )
    passphrase = serializers.CharField(
        required=False, allow_blank=True, write_only=True, help_text="Passphrase of an encrypted private key"
    )

    def get_fields(self):
        fields = super().get_fields()
        access = self._access()
        if self.instance is not None and not isinstance(self.instance, list | tuple) and hasattr(self.instance, "pk"):
            for name, field in fields.items():
                if name not in EDITABLE_FIELDS:
                    field.read_only = True
        organization = fields["organization"]
        if not organization.read_only and access is not None and not access.is_superuser:
            permission = getattr(self.context.get("view"), "permission_write", None)
            organization.queryset = organization.queryset.filter(pk__in=access.organization_ids(permission))
        return fields

    def _access(self):
        request = self.context.get("request")
        return get_access(request) if request is not None else None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self._may_see_private_key(instance):
            data.pop("private_key", None)
        return data

    def _may_see_private_key(self, instance):
        if isinstance(self.parent, serializers.ListSerializer):
            return False
        access = self._access()
        if access is None:
            return False
        if instance.organization_id is None:
            return access.is_superuser
        return access.has_permission("pki:write", instance.organization_id)

    def validate(self, attrs):
        passphrase = attrs.pop("passphrase", None)
        attrs = super().validate(attrs)
        access = self._access()
        if self.instance is None and attrs.get("organization") is None and access and not access.is_superuser:
            raise exceptions.PermissionDenied("Permission denied: only superusers may create shared objects")
        if passphrase:
            attrs["passphrase"] = passphrase
        return attrs


class CaSerializer(X509Serializer):
    class Meta:
        model = Ca
        fields = (*X509_FIELDS, "created", "modified")
        read_only_fields = ("created", "modified")


class CertSerializer(X509Serializer):
    ca = serializers.PrimaryKeyRelatedField(queryset=Ca.objects.all())

    class Meta:
        model = Cert
        fields = (*X509_FIELDS, "ca", "revoked", "revoked_at", "created", "modified")
        read_only_fields = ("revoked", "revoked_at", "created", "modified")
        validators = []  # (ca, serial_number) is checked by the service once the serial is known

    def get_fields(self):
        fields = super().get_fields()
        access = self._access()
        if access is not None and not access.is_superuser and not fields["ca"].read_only:
            permission = getattr(self.context.get("view"), "permission_read", None)
            fields["ca"].queryset = fields["ca"].queryset.visible_to(access, permission)
        return fields

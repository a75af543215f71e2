import copy
import functools
import operator

from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import Q, Value
from django.db.models.functions import Lower
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.exceptions import ErrorDetail

from netfleet.accounts.models import Organization, Site
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.sql import JsonSql, placeholders, raw_rows, table
from netfleet.core.tenancy import get_access

from .. import extensions
from ..choices import ConfigBackend, ConfigStatus
from ..models import Config, ConfigTemplate, Device, DeviceGroup, OrganizationConfigSettings, Template, normalize_mac

DEVICE_CONFIG_FIELDS = ("backend", "config", "context")


def _access(serializer):
    request = serializer.context.get("request")
    return get_access(request) if request is not None else None


def _single_instance(serializer):
    return serializer.instance is not None and not isinstance(serializer.instance, list | tuple)


def _limit_to_visible(field, access, permission):
    """Related objects the caller cannot see do not exist for it (another tenant's id is a 422, not a leak)."""
    if access is not None and not access.is_superuser:
        field.queryset = field.queryset.visible_to(access, permission)


def _limit_to_writable_organizations(serializer, fields):
    """Organizations where the caller may write (the base class does this only for a field with an explicit
    `source="organization"`, which DRF refuses on a field named `organization`)."""
    field, access = fields.get("organization"), _access(serializer)
    if field is None or field.read_only or access is None or access.is_superuser:
        return
    permission = getattr(serializer.context.get("view"), "permission_write", None)
    field.queryset = field.queryset.filter(pk__in=access.organization_ids(permission))


@extend_schema_field(
    {"type": "string", "enum": ConfigStatus.values, "description": "Configuration status"},
    component_name="ConfigStatusEnum",
)
class ConfigStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ConfigStatus.choices, read_only=True, **kwargs)


def _unique(message):
    return [ErrorDetail(message, code="unique")]


PLAIN_LIST_COLUMNS = ("mac_address", "key", "last_ip", "management_ip", "model", "os", "system", "notes", "hardware_id")


@functools.cache  # built once per process: the default database (its dialect, table names) is fixed
def _list_item(device):
    """The SQL expression of a listed device's API item, written by the database as JSON text (the device table
    referred to as `device`, its config joined as `c`): on a page of 100, building and rendering the items in
    Python cost more than reading the rows (docs/PERFORMANCE.md). Same output as DeviceSerializer
    (test_api's test_list_items_match_the_serializer and the live test over SQLite keep them in step)."""
    json, quote = JsonSql.of(), connection.ops.quote_name
    templates = json.array(
        json.uuid("t.template_id"), f"{table(ConfigTemplate)} t WHERE t.config_id = c.id", f"t.{quote('order')}"
    )
    config = {
        "status": "c.status",
        "error_reason": "c.error_reason",
        "backend": "c.backend",
        "templates": templates,
        "context": json.document("c.context"),
        "config": json.document("c.config"),
    }
    item = {
        "id": json.uuid(f"{device}.id"),
        "name": f"{device}.name",
        "organization": json.uuid(f"{device}.organization_id"),
        "site": json.uuid(f"{device}.site_id"),
        "group": json.uuid(f"{device}.group_id"),
        **{name: f"{device}.{name}" for name in PLAIN_LIST_COLUMNS},
        "is_deactivated": json.boolean(f"{device}.is_deactivated"),
        "config": json.object_or_null("c.id", config),
        "created": json.timestamp(f"{device}.created"),
        "modified": json.timestamp(f"{device}.modified"),
    }
    return json.text(json.object(item))


def device_list_page(ids):
    """The API items (JSON text, one per row) of a page of devices, `ids` being the page (a sliced
    `values_list("pk")` queryset).

    One statement: the ORM's SQL for the page's ids (its joins, conditions, order and limits) with the item
    and the config join in place of its one column, so every row is found once. SQL of another shape (e.g.
    `SELECT DISTINCT`) is read in two steps: the ids, then their items."""
    try:
        sql, params = ids.query.sql_with_params()
    except EmptyResultSet:  # a condition the ORM knows matches nothing
        return []
    device, quote = table(Device), connection.ops.quote_name
    selected = f"SELECT {device}.{quote('id')} AS {quote('pk')} FROM {device} "  # noqa: S608 - what to replace
    if not sql.startswith(selected):
        return device_list_rows([row[0] for row in raw_rows(ids)])  # (DISTINCT also selects the ordering)
    listed = (
        f"SELECT {_list_item(device)} FROM {device} "  # noqa: S608 - no user text: the ORM's parameters stay
        f"LEFT JOIN {table(Config)} c ON c.device_id = {device}.{quote('id')} "
    )
    with connection.cursor() as cursor:
        cursor.execute(listed + sql[len(selected) :], params)
        return [row[0] for row in cursor.fetchall()]


def device_list_rows(device_ids):
    """The API items (JSON text) of these devices (ids as a raw cursor reads them), in the order given."""
    if not device_ids:
        return []
    sql = (
        f"SELECT d.id, {_list_item('d')} FROM {table(Device)} d "  # noqa: S608 - no user text
        f"LEFT JOIN {table(Config)} c ON c.device_id = d.id WHERE d.id IN ({placeholders(device_ids)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, device_ids)
        items = dict(cursor.fetchall())
    return [items[pk] for pk in device_ids if pk in items]


def _template_ids(config):
    links = ConfigTemplate.objects.filter(config=config).order_by("order")
    return [str(pk) for pk in links.values_list("template_id", flat=True)]


def config_representation(instance):
    return {
        "status": instance.status,
        "error_reason": instance.error_reason,
        "backend": instance.backend,
        "templates": _template_ids(instance),  # ids only: no template rows are loaded
        "context": instance.context,
        "config": instance.config,
    }


class DeviceConfigSerializer(serializers.Serializer):
    status = ConfigStatusField()
    error_reason = serializers.CharField(read_only=True)
    backend = serializers.ChoiceField(choices=ConfigBackend.choices, required=False)
    templates = serializers.PrimaryKeyRelatedField(
        queryset=Template.objects.all(),
        many=True,
        required=False,
        help_text="Template ids in the order they apply; the organization's required templates are always kept.",
    )
    context = serializers.JSONField(required=False, help_text="Configuration variables of this device")
    config = serializers.JSONField(required=False, help_text="The device's own NetJSON configuration")

    def get_fields(self):
        fields = super().get_fields()
        view = self.context.get("view")
        _limit_to_visible(fields["templates"].child_relation, _access(self), getattr(view, "permission_read", None))
        return fields

    def to_representation(self, instance):
        return config_representation(instance)

    def validate_context(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class DeviceSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.filter(is_active=True))
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.all(), required=False, allow_null=True)
    group = serializers.PrimaryKeyRelatedField(queryset=DeviceGroup.objects.all(), required=False, allow_null=True)
    config = DeviceConfigSerializer(required=False)

    class Meta:
        model = Device
        fields = (
            "id",
            "name",
            "organization",
            "site",
            "group",
            "mac_address",
            "key",
            "last_ip",
            "management_ip",
            "model",
            "os",
            "system",
            "notes",
            "hardware_id",
            "is_deactivated",
            "config",
            "created",
            "modified",
        )
        read_only_fields = ("last_ip", "is_deactivated", "created", "modified")
        extra_kwargs = {"key": {"required": False}}
        validators = []  # name (case-insensitive) and MAC (normalised) uniqueness are checked in validate()

    def get_fields(self):
        fields = super().get_fields()
        access, view = _access(self), self.context.get("view")
        permission = getattr(view, "permission_read", None)
        _limit_to_visible(fields["site"], access, permission)
        _limit_to_visible(fields["group"], access, permission)
        if _single_instance(self):
            fields["organization"].read_only = True  # a device never moves between organizations
        _limit_to_writable_organizations(self, fields)
        return fields

    def to_representation(self, instance):
        # The device list's hot path: one dict per device rather than DRF's field-by-field walk (several times
        # faster on a page of 100). test_api's test_fast_representation_matches_the_fields keeps both in step.
        created, modified = self.fields["created"], self.fields["modified"]
        try:
            config = config_representation(instance.config)
        except ObjectDoesNotExist:
            config = None
        return {
            "id": str(instance.pk),
            "name": instance.name,
            "organization": str(instance.organization_id),
            "site": str(instance.site_id) if instance.site_id else None,
            "group": str(instance.group_id) if instance.group_id else None,
            "mac_address": instance.mac_address,
            "key": instance.key,
            "last_ip": instance.last_ip,
            "management_ip": instance.management_ip,
            "model": instance.model,
            "os": instance.os,
            "system": instance.system,
            "notes": instance.notes,
            "hardware_id": instance.hardware_id,
            "is_deactivated": instance.is_deactivated,
            "config": config,
            "created": created.to_representation(instance.created),
            "modified": modified.to_representation(instance.modified),
        }

    def validate_mac_address(self, value):
        mac = normalize_mac(value)
        if mac is None:
            raise serializers.ValidationError("Enter a valid MAC address.")
        return mac

    def validate(self, attrs):
        config = attrs.pop("config", None)
        attrs = super().validate(attrs)
        organization = attrs.get("organization") or getattr(self.instance, "organization", None)
        self._check_site_grant(organization, attrs.get("site", getattr(self.instance, "site", None)))
        self._check_unique(organization, attrs)
        if config is not None:
            # shaped for services.create_device / update_device: config fields, and templates apart
            attrs["templates"] = config.pop("templates", None)
            attrs["config"] = self._validate_config(attrs, config)
        return attrs

    def _check_site_grant(self, organization, site):
        access = _access(self)
        if access is None or access.is_superuser or organization is None:
            return
        if site is None and access.sites.get(organization.pk) is not None:
            raise serializers.ValidationError({"site": ["Required: your access is limited to some sites."]})

    def _check_unique(self, organization, attrs):
        # LOWER(name) = LOWER(...) and the MAC, unordered: the two unique indexes answer it (name__iexact and the
        # default newest-first ordering made it a scan of the organization's devices)
        others = Device.objects.filter(organization=organization).annotate(lower_name=Lower("name")).order_by()
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        name, mac = attrs.get("name"), attrs.get("mac_address")
        taken = [Q(lower_name=Lower(Value(name)))] if name is not None else []
        taken += [Q(mac_address=mac)] if mac is not None else []
        if not taken:
            return
        # one statement for both (a create checks both; each matches one device at most), told apart here
        errors = {}
        found = others.filter(functools.reduce(operator.or_, taken)).values_list("lower_name", "mac_address")[:2]
        for other_name, other_mac in found:
            if name is not None and other_name == name.lower():
                errors["name"] = _unique("A device with this name already exists in the organization.")
            if mac is not None and other_mac == mac:
                errors["mac_address"] = _unique("A device with this MAC address already exists in the organization.")
        if errors:
            raise serializers.ValidationError(errors)

    def _validate_config(self, attrs, data):
        """Validate the NetJSON with the device's variables, as the service will; errors name `config.<path>`."""
        if self.instance is not None:
            # a copy (it carries the new values the base validate set): linking the candidate config to the
            # instance itself would replace the instance's cached `config` with the unsaved candidate
            device = copy.copy(self.instance)
            stored = getattr(self.instance, "config", None) or Config()
        else:
            device = Device(**{k: v for k, v in attrs.items() if k in {f.name for f in Device._meta.fields}})
            stored = Config()
        candidate = Config(device=device, **{name: getattr(stored, name) for name in DEVICE_CONFIG_FIELDS})
        for name, value in data.items():
            setattr(candidate, name, value)
        try:
            candidate.full_clean(exclude=["device"], validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"config": serializers.as_serializer_error(exc)}) from None
        return data


class TemplateSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        allow_null=True,
        help_text="null shares the template with every organization (superusers only).",
    )

    class Meta:
        model = Template
        fields = (
            "id",
            "name",
            "organization",
            "backend",
            "type",
            "default",
            "required",
            "config",
            "default_values",
            "tags",
            "created",
            "modified",
        )
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        if _single_instance(self):
            fields["organization"].read_only = True  # configs link to it: a template stays where it is
        _limit_to_writable_organizations(self, fields)
        for extension in extensions.TEMPLATE_FIELDS:
            fields[extension.name] = extension.make_field(self)
        return fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for extension in extensions.TEMPLATE_FIELDS:
            data[extension.name] = extension.to_representation(instance)
        return data

    def save_extensions(self, template):
        """Apply the values of the fields other apps contributed (after the template itself was saved)."""
        for extension in extensions.TEMPLATE_FIELDS:
            if extension.name in self.extension_values:
                extension.save(template, self.extension_values[extension.name])

    def validate(self, attrs):
        # contributed fields are not model fields: set them aside for save_extensions()
        self.extension_values = {e.name: attrs.pop(e.name) for e in extensions.TEMPLATE_FIELDS if e.name in attrs}
        attrs = super().validate(attrs)
        access = _access(self)
        # `organization` is required (DRF's uniqueness check on (organization, name)); null means shared
        if self.instance is None and attrs.get("organization") is None and access and not access.is_superuser:
            raise exceptions.PermissionDenied("Permission denied: only superusers may create shared templates")
        return attrs


class DeviceGroupSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.filter(is_active=True))
    templates = serializers.PrimaryKeyRelatedField(
        queryset=Template.objects.all(),
        many=True,
        required=False,
        help_text="Templates applied to the group's devices (after their own, ordered by name)",
    )

    class Meta:
        model = DeviceGroup
        fields = (
            "id",
            "name",
            "organization",
            "description",
            "meta_data",
            "context",
            "templates",
            "created",
            "modified",
        )
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        view = self.context.get("view")
        _limit_to_visible(fields["templates"].child_relation, _access(self), getattr(view, "permission_read", None))
        if _single_instance(self):
            fields["organization"].read_only = True
        _limit_to_writable_organizations(self, fields)
        return fields

    def validate(self, attrs):
        templates = attrs.pop("templates", None)
        attrs = super().validate(attrs)
        organization = attrs.get("organization") or getattr(self.instance, "organization", None)
        if templates is not None:
            foreign = [t for t in templates if t.organization_id not in (None, organization.pk)]
            if foreign:
                raise serializers.ValidationError(
                    {"templates": [f"Template {t.pk} belongs to another organization." for t in foreign]}
                )
            attrs["templates"] = templates
        return attrs


class OrganizationConfigSettingsSerializer(NetfleetModelSerializer):
    regenerate_shared_secret = serializers.BooleanField(
        write_only=True,
        default=False,
        help_text="true replaces the shared secret (requires 'user:admin' in the organization)",
    )

    class Meta:
        model = OrganizationConfigSettings
        fields = (
            "organization",
            "registration_enabled",
            "shared_secret",
            "regenerate_shared_secret",
            "context",
            "device_limit",
            "created",
            "modified",
        )
        read_only_fields = ("organization", "shared_secret", "created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        access = _access(self)
        if access is not None and not access.is_superuser:
            fields["device_limit"].read_only = True  # a quota set by the operator of the platform
            if not (_single_instance(self) and access.has_permission("user:admin", self.instance.organization_id)):
                fields.pop("shared_secret")  # only organization administrators see the registration secret
        return fields

    def validate_context(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs):
        regenerate = attrs.pop("regenerate_shared_secret", False)
        attrs = super().validate(attrs)
        access = _access(self)
        if regenerate and access is not None and not access.has_permission("user:admin", self.instance.organization_id):
            raise exceptions.PermissionDenied("Permission denied: requires 'user:admin'")
        attrs["regenerate_secret"] = regenerate
        return attrs


class PlatformDeviceSerializer(serializers.ModelSerializer):
    status = ConfigStatusField(source="config.status", allow_null=True)
    organization_id = serializers.UUIDField(read_only=True)
    site_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Device
        fields = (
            "id",
            "name",
            "status",
            "organization_id",
            "site_id",
            "mac_address",
            "model",
            "last_ip",
            "management_ip",
            "is_deactivated",
            "created",
            "modified",
        )
        read_only_fields = fields

    def to_representation(self, instance):
        # hot list path, as DeviceSerializer's (test_api checks it against the fields)
        created, modified = self.fields["created"], self.fields["modified"]
        try:
            status = instance.config.status
        except ObjectDoesNotExist:
            status = None
        return {
            "id": str(instance.pk),
            "name": instance.name,
            "status": status,
            "organization_id": str(instance.organization_id),
            "site_id": str(instance.site_id) if instance.site_id else None,
            "mac_address": instance.mac_address,
            "model": instance.model,
            "last_ip": instance.last_ip,
            "management_ip": instance.management_ip,
            "is_deactivated": instance.is_deactivated,
            "created": created.to_representation(instance.created),
            "modified": modified.to_representation(instance.modified),
        }

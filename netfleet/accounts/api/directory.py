"""The directory API: organizations, users, organization members and the audit trail (platform surface)."""

import copy

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response

from netfleet.core.api.pagination import ItemsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.api.views import PlatformModelViewSet, TenantScopedMixin
from netfleet.core.tenancy import get_access

from .. import directory_services as services
from .. import filters
from ..models import AuditEvent, Membership, Organization, Site, User
from ..roles import Role

PLATFORM_METHODS = ["get", "post", "patch", "delete", "head", "options"]


def _is_superuser(serializer):
    request = serializer.context.get("request")
    return request is not None and get_access(request).is_superuser


def _single_instance(serializer):
    return serializer.instance is not None and not isinstance(serializer.instance, list | tuple)


# -- serializers --------------------------------------------------------------------------------------------------


class OrganizationSerializer(NetfleetModelSerializer):
    class Meta:
        model = Organization
        fields = ("id", "name", "slug", "is_active", "created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        if not _is_superuser(self):
            fields["is_active"].read_only = True  # deactivating a tenant locks out all of it: superusers only
        return fields


def _validate_password(password, user):
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        errors = [ErrorDetail(message, code=error.code or "invalid") for error in exc.error_list for message in error]
        raise serializers.ValidationError({"password": errors}) from None


class UserSerializer(NetfleetModelSerializer):
    password = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, max_length=128, style={"input_type": "password"}
    )
    # on create by an organization administrator: the membership to create with the user
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True), write_only=True, required=False
    )
    role = serializers.ChoiceField(choices=Role.choices, write_only=True, required=False)
    sites = serializers.PrimaryKeyRelatedField(queryset=Site.objects.all(), many=True, write_only=True, required=False)

    class Meta:
        model = User
        fields = (
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_superuser",
            "mfa_enabled",
            "date_joined",
            "last_login",
            "password",
            "organization",
            "role",
            "sites",
        )
        read_only_fields = ("mfa_enabled", "date_joined", "last_login")

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if not _is_superuser(self):
            fields["is_superuser"].read_only = True
            if request is not None:
                administered = get_access(request).organization_ids(services.USER_ADMIN)
                fields["organization"].queryset = fields["organization"].queryset.filter(pk__in=administered)
                sites = fields["sites"].child_relation
                sites.queryset = sites.queryset.filter(organization_id__in=administered)
        if _single_instance(self):
            for name in ("organization", "role", "sites"):  # memberships change under /organizations/{id}/members/
                fields.pop(name)
        return fields

    def validate_email(self, value):
        others = User.objects.filter(email__iexact=value)
        if _single_instance(self):
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("A user with this email already exists.", code="unique")
        return value

    def validate(self, attrs):
        password = attrs.pop("password", None)
        membership = {name: attrs.pop(name) for name in ("organization", "role", "sites") if name in attrs}
        attrs = super().validate(attrs)
        if password is not None:
            candidate = copy.copy(self.instance) if self.instance is not None else User()
            for name, value in attrs.items():
                setattr(candidate, name, value)
            _validate_password(password, candidate)
            attrs["password"] = password
        if self.instance is None:
            attrs.update(self._validate_membership(membership))
        return attrs

    def _validate_membership(self, membership):
        organization, role, sites = membership.get("organization"), membership.get("role"), membership.get("sites", [])
        errors = {}
        if not _is_superuser(self):
            if organization is None:
                errors["organization"] = [ErrorDetail("This field is required.", code="required")]
            if role is None:
                errors["role"] = [ErrorDetail("This field is required.", code="required")]
        elif (organization is None) != (role is None) or (sites and organization is None):
            errors["organization"] = [ErrorDetail("Give organization and role together.", code="invalid")]
        if organization is not None and any(site.organization_id != organization.pk for site in sites):
            errors["sites"] = [ErrorDetail("Every site must belong to the organization.", code="invalid")]
        if errors:
            raise serializers.ValidationError(errors)
        return {"organization": organization, "role": role, "sites": sites}


@extend_schema_field(
    {
        "type": "object",
        "description": "Renders {id, username, email}; write the user's id.",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "username": {"type": "string"},
            "email": {"type": "string", "format": "email"},
        },
    }
)
class UserBriefField(serializers.PrimaryKeyRelatedField):
    """Accepts a user id, renders {id, username, email}."""

    def use_pk_only_optimization(self):
        return False

    def to_representation(self, value):
        return {"id": str(value.pk), "username": value.username, "email": value.email}


class MembershipSerializer(NetfleetModelSerializer):
    user = UserBriefField(queryset=User.objects.all())
    sites = serializers.PrimaryKeyRelatedField(
        queryset=Site.objects.all(),
        many=True,
        required=False,
        error_messages={"does_not_exist": "Site {pk_value} does not exist in this organization."},
    )

    class Meta:
        model = Membership
        fields = ("user", "role", "sites", "created")

    def get_fields(self):
        fields = super().get_fields()
        request, organization = self.context.get("request"), self.context.get("organization")
        if organization is not None:
            fields["sites"].child_relation.queryset = Site.objects.filter(organization=organization)
        if request is not None:
            fields["user"].queryset = services.visible_users(request)
        if _single_instance(self):
            fields["user"].read_only = True
        return fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "created",
            "action",
            "actor_id",
            "actor_label",
            "organization_id",
            "target_type",
            "target_id",
            "request_id",
            "source_ip",
            "details",
        )
        read_only_fields = fields


# -- permissions --------------------------------------------------------------------------------------------------


class SuperuserToCreateOrDelete(permissions.BasePermission):
    """Creating and deleting organizations is for superusers. Deletion is judged on the object, so another
    tenant's organization still answers 404."""

    message = "Permission denied: only superusers may create or delete organizations"

    def has_permission(self, request, view):
        return view.action != "create" or get_access(request).is_superuser

    def has_object_permission(self, request, view, obj):
        return view.action != "destroy" or get_access(request).is_superuser


class UserPermission(permissions.BasePermission):
    """Anyone reads the users it can see; writes follow the directory rules (see directory_services)."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action == "create" and not get_access(request).has_permission(services.USER_ADMIN):
            self.message = f"Permission denied: requires '{services.USER_ADMIN}'"
            return False
        return True

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        if view.action == "destroy":
            services.check_may_delete_user(request, obj)
        else:
            services.check_may_change_user(request, obj)
        return True


class OrganizationAdminPermission(permissions.BasePermission):
    """user:admin in the organization of the URL; an organization the caller cannot see is a 404."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        organization = view.organization  # raises NotFound
        if get_access(request).has_permission(services.USER_ADMIN, organization.pk):
            return True
        self.message = f"Permission denied: requires '{services.USER_ADMIN}'"
        return False

    def has_object_permission(self, request, view, obj):
        if request.method not in permissions.SAFE_METHODS:
            services.check_may_manage_member(request, obj)
        return True


# -- viewsets -----------------------------------------------------------------------------------------------------


class OrganizationViewSet(PlatformModelViewSet):
    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    filterset_class = filters.OrganizationFilterSet
    permission_classes = [SuperuserToCreateOrDelete, TenantPermission]
    permission_write = "user:admin"


class UserViewSet(viewsets.ModelViewSet):
    queryset = User.objects.all()
    serializer_class = UserSerializer
    filterset_class = filters.UserFilterSet
    permission_classes = [UserPermission]
    pagination_class = ItemsPagination
    http_method_names = PLATFORM_METHODS

    def get_queryset(self):
        return services.visible_users(self.request).order_by("username")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        membership = {name: data.pop(name) for name in ("organization", "role", "sites")}
        password = data.pop("password", None)
        serializer.instance = services.create_user(request=self.request, fields=data, password=password, **membership)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        password = data.pop("password", None)
        serializer.instance = services.update_user(
            request=self.request, user=serializer.instance, fields=data, password=password
        )

    def perform_destroy(self, instance):
        services.delete_user(request=self.request, user=instance)


class MembershipViewSet(viewsets.ModelViewSet):
    queryset = Membership.objects.all()
    serializer_class = MembershipSerializer
    filterset_class = filters.MembershipFilterSet
    permission_classes = [OrganizationAdminPermission]
    pagination_class = ItemsPagination
    http_method_names = PLATFORM_METHODS
    lookup_field = "user"
    lookup_url_kwarg = "user_id"

    @cached_property
    def organization(self):
        organization_id = self.kwargs.get("organization_id")
        try:
            return services.visible_organizations(self.request).get(pk=organization_id)
        except (Organization.DoesNotExist, DjangoValidationError, ValueError):
            raise exceptions.NotFound() from None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return (
            Membership.objects.filter(organization=self.organization)
            .select_related("user", "organization")
            .prefetch_related(Prefetch("sites", queryset=Site.objects.only("id")))
            .order_by("user__username")
        )

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and "organization_id" in self.kwargs:
            context["organization"] = self.organization
        return context

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.add_member(request=request, organization=self.organization, **serializer.validated_data)
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.change_member(
            request=self.request, membership=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.remove_member(request=self.request, membership=instance)


class AuditEventViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = filters.AuditEventFilterSet
    pagination_class = ItemsPagination
    permission_read = "user:admin"

    def get_queryset(self):
        return super().get_queryset().order_by("-created", "-id")

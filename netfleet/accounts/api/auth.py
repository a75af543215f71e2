"""Login, MFA, token refresh, logout, /auth/me and API keys (platform-api.txt), and the /users/ login faces
of routers-api.txt. Views are thin: the work is in netfleet.accounts.services."""

import secrets

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from netfleet.core.api.pagination import ItemsPagination
from netfleet.core.tenancy import get_access

from .. import services
from ..models import ApiKey, Organization, Site
from ..roles import ALL_PERMISSIONS, ROLE_ORDER, role_rank

# --- serializers --------------------------------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    login = serializers.CharField(max_length=254, help_text="Username or email")
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class UsernameLoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="Username or email")
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class ApiKeyLoginSerializer(serializers.Serializer):
    public_key = serializers.CharField(max_length=64)
    private_key = serializers.CharField(max_length=256, trim_whitespace=False)


class MfaLoginSerializer(serializers.Serializer):
    mfa_token = serializers.CharField(max_length=256)
    code = serializers.CharField(max_length=32, help_text="A TOTP code or a recovery code")


class MfaCodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)


class RefreshSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=256, required=False)


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class MfaChallengeSerializer(serializers.Serializer):
    require_mfa = serializers.BooleanField()
    mfa_token = serializers.CharField()


class ApiKeySerializer(serializers.ModelSerializer):
    organization_ids = serializers.PrimaryKeyRelatedField(
        source="organizations", many=True, required=False, queryset=Organization.objects.all()
    )
    site_ids = serializers.PrimaryKeyRelatedField(
        source="sites", many=True, required=False, queryset=Site.objects.all()
    )
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=ALL_PERMISSIONS), allow_empty=False)
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = (
            "id", "name", "prefix", "permissions", "organization_ids", "site_ids", "expires_at",
            "last_used_at", "revoked_at", "is_active", "created",
        )  # fmt: skip
        read_only_fields = ("prefix", "last_used_at", "revoked_at", "created")

    def get_is_active(self, key) -> bool:
        return services.api_key_is_usable(key)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value

    def validate(self, attrs):
        """A key never exceeds its owner: its permissions, organizations and sites must be the owner's."""
        access = get_access(self.context["request"])
        organizations = attrs.get("organizations") or []
        sites = attrs.get("sites") or []
        if not access.is_superuser:
            for org in organizations:
                if org.pk not in access.permissions:
                    raise serializers.ValidationError({"organization_ids": [f"not a member of {org.pk}"]})
            for site in sites:
                allowed = access.sites.get(site.organization_id)
                if site.organization_id not in access.permissions or (allowed is not None and site.pk not in allowed):
                    raise serializers.ValidationError({"site_ids": [f"no access to site {site.pk}"]})
            scope = [org.pk for org in organizations] or list(access.permissions)
            held = set().union(*(access.permissions[org] for org in scope)) if scope else set()
            missing = sorted(set(attrs["permissions"]) - held)
            if missing:
                raise serializers.ValidationError(
                    {"permissions": [f"exceeds your own permissions: {', '.join(missing)}"]}
                )
        return attrs


# --- helpers ------------------------------------------------------------------------------------------------


def _set_auth_cookies(response, pair):
    secure = settings.SESSION_COOKIE_SECURE
    response.set_cookie(
        settings.NETFLEET_ACCESS_COOKIE, pair.access_token, max_age=pair.expires_in, httponly=True,
        secure=secure, samesite="Lax", path="/",
    )  # fmt: skip
    response.set_cookie(
        settings.NETFLEET_REFRESH_COOKIE, pair.refresh_token, max_age=settings.NETFLEET_REFRESH_TOKEN_SECONDS,
        httponly=True, secure=secure, samesite="Strict", path="/api/v1/auth/",
    )  # fmt: skip
    response.set_cookie(
        settings.NETFLEET_CSRF_COOKIE, secrets.token_urlsafe(32), max_age=settings.NETFLEET_REFRESH_TOKEN_SECONDS,
        httponly=False, secure=secure, samesite="Lax", path="/",
    )  # fmt: skip
    return response


def _clear_auth_cookies(response):
    response.delete_cookie(settings.NETFLEET_ACCESS_COOKIE, path="/")
    response.delete_cookie(settings.NETFLEET_REFRESH_COOKIE, path="/api/v1/auth/")
    response.delete_cookie(settings.NETFLEET_CSRF_COOKIE, path="/")
    return response


def _tokens_response(pair, *, with_simplejwt_names=False):
    body = pair.as_response()
    if with_simplejwt_names:  # the routers-api faces also answer {access, refresh}
        body = {"access": pair.access_token, "refresh": pair.refresh_token, **body}
    return _set_auth_cookies(Response(body), pair)


class PublicAuthView(APIView):
    """Login flows: no credential needed, so none is checked (a stale cookie must not block a fresh login)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def validated(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


# --- views --------------------------------------------------------------------------------------------------


class LoginView(PublicAuthView):
    @extend_schema(request=LoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = self.validated(LoginSerializer)
        result = services.login(login=data["login"], password=data["password"], request=request)
        if isinstance(result, str):
            return Response({"require_mfa": True, "mfa_token": result})
        return _tokens_response(result)


class MfaLoginView(PublicAuthView):
    @extend_schema(request=MfaLoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = self.validated(MfaLoginSerializer)
        return _tokens_response(services.complete_mfa_login(**data, request=request))


class RefreshView(PublicAuthView):
    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = self.validated(RefreshSerializer)
        raw = data.get("refresh_token") or request.COOKIES.get(settings.NETFLEET_REFRESH_COOKIE)
        if not raw:
            raise serializers.ValidationError({"refresh_token": ["This field is required."]}, code="required")
        return _tokens_response(services.refresh(refresh_token=raw, request=request))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        session = getattr(request.auth, "session", None)
        if session is not None:
            services.logout(session_id=session.pk, request=request)
        return _clear_auth_cookies(Response(status=status.HTTP_204_NO_CONTENT))


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "id": serializers.UUIDField(),
                "username": serializers.CharField(),
                "email": serializers.EmailField(),
                "first_name": serializers.CharField(),
                "last_name": serializers.CharField(),
                "is_superuser": serializers.BooleanField(),
                "mfa_enabled": serializers.BooleanField(),
                "role": serializers.CharField(allow_null=True),
                "permissions": serializers.ListField(child=serializers.CharField()),
                "organizations": serializers.ListField(child=serializers.DictField()),
                "sites": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request):
        user, access = request.user, get_access(request)
        memberships = {m.organization_id: m for m in user.memberships.select_related("organization")}
        if access.is_superuser:
            organizations = list(Organization.objects.all())
            sites = Site.objects.all()
            permissions, role = sorted(ALL_PERMISSIONS), "superuser"
        else:
            organizations = [m.organization for m in memberships.values() if m.organization_id in access.permissions]
            sites = Site.objects.visible_to(access)
            permissions = sorted(set().union(*access.permissions.values())) if access.permissions else []
            ranks = [role_rank(memberships[org].role) for org in access.permissions if org in memberships]
            role = ROLE_ORDER[max(ranks)] if ranks else None
        return Response(
            {
                "id": user.pk,
                "username": user.username,
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "is_superuser": user.is_superuser,
                "mfa_enabled": user.mfa_enabled,
                "role": role,
                "permissions": permissions,
                "organizations": [
                    {
                        "id": org.pk,
                        "name": org.name,
                        "slug": org.slug,
                        "role": memberships[org.pk].role if org.pk in memberships else None,
                    }
                    for org in organizations
                ],
                "sites": [
                    {"id": site.pk, "name": site.name, "slug": site.slug, "organization_id": site.organization_id}
                    for site in sites.order_by("name")
                ],
            }
        )


class MfaSetupView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "MfaSetup", {"secret": serializers.CharField(), "otpauth_uri": serializers.CharField()}
        ),
    )
    def post(self, request):
        secret, uri = services.setup_mfa(user=request.user)
        return Response({"secret": secret, "otpauth_uri": uri})


class MfaEnableView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=MfaCodeSerializer,
        responses=inline_serializer(
            "MfaEnabled",
            {
                "mfa_enabled": serializers.BooleanField(),
                "recovery_codes": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request):
        serializer = MfaCodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        codes = services.enable_mfa(user=request.user, code=serializer.validated_data["code"], request=request)
        return Response({"mfa_enabled": True, "recovery_codes": codes})


class MfaDisableView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=MfaCodeSerializer,
        responses=inline_serializer("MfaDisabled", {"mfa_enabled": serializers.BooleanField()}),
    )
    def post(self, request):
        serializer = MfaCodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.disable_mfa(user=request.user, code=serializer.validated_data["code"], request=request)
        return Response({"mfa_enabled": False})


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.DestroyModelMixin, viewsets.GenericViewSet):  # fmt: skip
    """The caller's own API keys. DELETE revokes (the record stays for the audit trail)."""

    queryset = ApiKey.objects.none()
    serializer_class = ApiKeySerializer
    permission_classes = [IsAuthenticated]
    pagination_class = ItemsPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ApiKey.objects.none()
        return ApiKey.objects.filter(user=self.request.user).prefetch_related("organizations", "sites")

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = services.create_api_key(user=request.user, request=request, **serializer.validated_data)
        body = self.get_serializer(key).data
        body["key"] = secret  # shown once; only its hash is stored
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.revoke_api_key(key=instance, request=self.request)

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = self.get_object()
        services.revoke_api_key(key=key, request=request)
        key.refresh_from_db()
        return Response(self.get_serializer(key).data)


class UsersLoginView(PublicAuthView):
    """routers-api.txt `POST /users/login/` with {username, password}: the same login as /api/v1/auth/login."""

    @extend_schema(request=UsernameLoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = self.validated(UsernameLoginSerializer)
        result = services.login(login=data["username"], password=data["password"], request=request)
        if isinstance(result, str):
            return Response({"require_mfa": True, "mfa_token": result})
        return _tokens_response(result, with_simplejwt_names=True)


class UsersApiKeyLoginView(PublicAuthView):
    """routers-api.txt `POST /users/api-key-login/` with {public_key, private_key}: a JWT pair scoped to the key."""

    @extend_schema(request=ApiKeyLoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = self.validated(ApiKeyLoginSerializer)
        return _tokens_response(services.api_key_login(**data, request=request), with_simplejwt_names=True)

"""Organizations, users, memberships (a role per organization, optionally limited to sites) and sites."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import NetfleetModel, OrganizationScopedModel, TenantManager

from .roles import Role


class Organization(NetfleetModel):
    """A tenant: every object belongs to one (or is shared)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)

    tenancy_organization_field = "pk"
    tenancy_site_field = None
    objects = TenantManager()

    class Meta:
        ordering = ("name",)

    def __str__(self):
        return self.name

    @property
    def tenancy_organization_id(self):
        return self.pk


class User(AbstractUser):
    """A person or automation account. Logs in with email or username."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    mfa_secret = EncryptedTextField(blank=True, default="")
    mfa_enabled = models.BooleanField(default=False)
    # the last TOTP time step accepted, so a code cannot be replayed within its window
    mfa_last_step = models.BigIntegerField(default=0)

    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ("username",)
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci")]

    def __str__(self):
        return self.username


class Site(OrganizationScopedModel):
    """A place within an organization (a campus, a POP, a customer premises)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)

    tenancy_site_field = "pk"

    class Meta:
        ordering = ("organization__name", "name")
        constraints = [models.UniqueConstraint(fields=("organization", "slug"), name="accounts_site_org_slug")]

    def __str__(self):
        return self.name


class Membership(NetfleetModel):
    """A user's role in an organization; with sites set, limited to those sites."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    sites = models.ManyToManyField(Site, blank=True, related_name="memberships")

    class Meta:
        ordering = ("organization__name", "user__username")
        constraints = [models.UniqueConstraint(fields=("user", "organization"), name="accounts_membership_unique")]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"


class AuthSession(NetfleetModel):
    """One login: the family of refresh tokens it rotates through. Access JWTs carry its id (`sid`)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    api_key = models.ForeignKey("ApiKey", on_delete=models.CASCADE, null=True, blank=True, related_name="auth_sessions")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=50, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self):
        return f"session {self.pk} of {self.user_id}"


class RefreshToken(NetfleetModel):
    """A single-use refresh token, stored as its SHA-256 (the token itself is random, high-entropy)."""

    session = models.ForeignKey(AuthSession, on_delete=models.CASCADE, related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self):
        return f"refresh token of {self.session_id}"


class MfaChallenge(NetfleetModel):
    """The short-lived, single-use `mfa_token` handed out between password and code."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mfa_challenges")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"MFA challenge for {self.user_id}"


class RecoveryCode(NetfleetModel):
    """A one-time MFA recovery code, stored hashed."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"recovery code of {self.user_id}"


class LoginLock(models.Model):
    """Failed-login counter and lock for one login key: a user id, or the name given for an unknown user
    (so unknown names lock exactly like real accounts and a prober learns nothing)."""

    key = models.CharField(max_length=300, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.key


class ApiKey(NetfleetModel):
    """A long-lived credential `<prefix>.<secret>`: the prefix is public, only the secret's hash is stored.
    Its permissions are a subset of its owner's, optionally limited to some organizations/sites."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    permissions = models.JSONField(default=list)
    organizations = models.ManyToManyField(Organization, blank=True, related_name="+")
    sites = models.ManyToManyField(Site, blank=True, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self):
        return f"{self.name} ({self.prefix})"


class AuditAction(models.TextChoices):
    LOGIN = "login", "Login"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOCKOUT = "lockout", "Account locked"
    MFA_CHALLENGE = "mfa_challenge", "MFA challenge issued"
    MFA_ENABLED = "mfa_enabled", "MFA enabled"
    MFA_DISABLED = "mfa_disabled", "MFA disabled"
    TOKEN_REFRESH = "token_refresh", "Token refresh"
    TOKEN_REUSE = "token_reuse", "Refresh token reuse (session revoked)"
    LOGOUT = "logout", "Logout"
    API_KEY_CREATED = "api_key_created", "API key created"
    API_KEY_REVOKED = "api_key_revoked", "API key revoked"
    PERMISSION_CHANGED = "permission_changed", "Permission change"
    USER_CHANGED = "user_changed", "User change"


class AuditEvent(NetfleetModel):
    """Who did what, when, from where (and under which request id). Append-only."""

    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=30, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=140, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    tenancy_organization_field = "organization"
    tenancy_site_field = None
    tenancy_shared = False
    objects = TenantManager()

    class Meta:
        ordering = ("-created",)
        indexes = [models.Index(fields=("organization", "-created"), name="accounts_audit_org_created")]

    def __str__(self):
        return f"{self.action} by {self.actor_label or self.actor_id}"

    @property
    def tenancy_organization_id(self):
        return self.organization_id

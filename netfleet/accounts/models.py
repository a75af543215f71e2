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

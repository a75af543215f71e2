"""Abstract base models: UUID ids, timestamps, and organization (and site) scoping."""

import uuid

from django.db import models
from django.db.models import Q

from netfleet.core.tenancy import Access


class NetfleetModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def validated_save(self, **kwargs):
        self.full_clean()
        self.save(**kwargs)


class TenantQuerySet(models.QuerySet):
    """Filters rows to what an `Access` may see, using the model's declared scope paths."""

    def visible_to(self, access: Access, permission=None):
        if access.is_superuser:
            return self
        model = self.model
        org_path = model.tenancy_organization_field
        site_path = getattr(model, "tenancy_site_field", None)
        condition = Q(pk__in=[])
        everywhere = [org for org in access.organization_ids(permission) if access.sites.get(org) is None]
        if everywhere:
            condition |= Q(**{f"{org_path}__in": everywhere})
        for org in access.organization_ids(permission):
            limited = access.sites.get(org)
            if limited is None:
                continue
            if site_path:
                condition |= Q(**{org_path: org, f"{site_path}__in": limited})
            else:  # objects without a site belong to the whole organization
                condition |= Q(**{org_path: org})
        if getattr(model, "tenancy_shared", False):
            condition |= Q(**{f"{org_path}__isnull": True})
        return self.filter(condition)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    pass


class OrganizationScopedModel(NetfleetModel):
    """An object owned by one organization. Subclasses with a site FK set `tenancy_site_field = "site"`."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)s_set",
        verbose_name="organization",
    )

    tenancy_organization_field = "organization"
    tenancy_site_field = None
    tenancy_shared = False

    objects = TenantManager()

    class Meta:
        abstract = True

    @property
    def tenancy_organization_id(self):
        return self.organization_id

    @property
    def tenancy_site_id(self):
        if self.tenancy_site_field is None:
            return None
        if self.tenancy_site_field == "pk":
            return self.pk
        return getattr(self, f"{self.tenancy_site_field}_id")


class ShareableModel(OrganizationScopedModel):
    """An object owned by an organization, or shared (organization null: readable by all, writable by superusers)."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)s_set",
        null=True,
        blank=True,
        verbose_name="organization",
        help_text="Leave empty to share with every organization.",
    )
    tenancy_shared = True

    class Meta:
        abstract = True

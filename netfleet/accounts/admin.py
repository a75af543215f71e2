from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError

from .models import ApiKey, AuditEvent, Membership, Organization, Site, User


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "organization", "role", "sites")

    def clean(self):
        cleaned = super().clean()
        # inline on an organization, the organization is the parent (set on the instance), not a form field
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        sites = cleaned.get("sites") or []
        if organization is not None and any(site.organization_id != organization.pk for site in sites):
            raise ValidationError({"sites": "Every site must belong to the membership's organization."})
        return cleaned


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    extra = 0
    autocomplete_fields = ("user",)


class UserMembershipInline(MembershipInline):
    autocomplete_fields = ("organization",)
    fields = ("organization", "role", "sites")


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0
    fields = ("name", "slug", "description")
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "created")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (SiteInline, MembershipInline)


class NetfleetUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class NetfleetUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = NetfleetUserChangeForm
    add_form = NetfleetUserCreationForm
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_superuser", "mfa_enabled")
    list_filter = ("is_active", "is_superuser", "mfa_enabled", "memberships__organization")
    readonly_fields = ("mfa_enabled", "last_login", "date_joined")
    # the MFA secret and replay counter stay out of the admin; MFA is enabled/disabled through its own flow
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "mfa_enabled")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "usable_password", "password1", "password2")}),
    )
    filter_horizontal = ()
    inlines = (UserMembershipInline,)

    def get_inline_instances(self, request, obj=None):
        # adding a user is the usual two-step form: memberships come on the change page
        return super().get_inline_instances(request, obj) if obj is not None else []


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "organization", "role", "created")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__name")
    autocomplete_fields = ("user", "organization")
    filter_horizontal = ("sites",)


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "organization", "created")
    list_filter = ("organization",)
    search_fields = ("name", "slug", "description")
    list_select_related = ("organization",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued through the API (the secret is shown once, there); the admin reviews and revokes them.
    The secret's hash is never displayed."""

    list_display = ("name", "prefix", "user", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    fields = (
        "name",
        "user",
        "prefix",
        "permissions",
        "organizations",
        "sites",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "last_used_ip",
        "created",
    )
    readonly_fields = ("user", "prefix", "last_used_at", "last_used_ip", "created")
    filter_horizontal = ("organizations", "sites")

    def has_add_permission(self, request):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created", "action", "actor_label", "organization", "target_type", "target_id", "source_ip")
    list_filter = ("action", "organization")
    search_fields = ("actor_label", "target_id", "request_id")
    list_select_related = ("organization",)
    date_hierarchy = "created"
    fields = (
        "created",
        "action",
        "actor",
        "actor_label",
        "organization",
        "target_type",
        "target_id",
        "request_id",
        "source_ip",
        "details",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

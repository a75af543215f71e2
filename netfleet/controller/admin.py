"""Read-only admin views of the controller. Changes go through the API: its services re-render exactly the
configurations a change affects and keep required templates, which an admin form save would bypass."""

from django.contrib import admin

from .models import Device, DeviceGroup, OrganizationConfigSettings, Template


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin):
    list_display = ("name", "organization", "mac_address", "model", "last_ip", "is_deactivated", "created")
    list_filter = ("is_deactivated", "config__status", "config__backend", "organization")
    list_select_related = ("organization",)
    search_fields = ("name", "mac_address")
    exclude = ("key",)  # the device's secret


@admin.register(Template)
class TemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "organization", "backend", "type", "default", "required", "created")
    list_filter = ("backend", "type", "default", "required", "organization")
    list_select_related = ("organization",)
    search_fields = ("name",)


@admin.register(DeviceGroup)
class DeviceGroupAdmin(ReadOnlyAdmin):
    list_display = ("name", "organization", "created")
    list_filter = ("organization",)
    list_select_related = ("organization",)
    search_fields = ("name", "description")


@admin.register(OrganizationConfigSettings)
class OrganizationConfigSettingsAdmin(ReadOnlyAdmin):
    list_display = ("organization", "registration_enabled", "device_limit", "modified")
    list_select_related = ("organization",)
    exclude = ("shared_secret", "shared_secret_digest")

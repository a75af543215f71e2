"""Rendering device configurations with netjsonconfig.

The archive is netjsonconfig's tar.gz (entries with mtime 0, gzip mtime 0, stable order), so the same inputs
give the same bytes; its md5 is the checksum the agent verifies.
"""

import hashlib

from django.core.exceptions import ValidationError
from netjsonconfig import OpenWisp, OpenWrt
from netjsonconfig.exceptions import ValidationError as NetjsonValidationError

from . import extensions
from .choices import ConfigBackend

BACKENDS = {ConfigBackend.OPENWRT: OpenWrt, ConfigBackend.OPENWISP: OpenWisp}


def backend_class(name):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValidationError({"backend": f"Unknown backend {name!r}"}) from None


def _netjson_error(exc, field):
    details = getattr(exc, "details", None)
    path = ".".join(str(part) for part in getattr(details, "path", ())) if details is not None else ""
    message = getattr(details, "message", None) or str(exc)
    return ValidationError({f"{field}.{path}" if path else field: message})


def validate_netjson(backend, config, *, field="config", context=None):
    """Validate a NetJSON body against a backend's schema (variables filled from `context` first);
    raises Django ValidationError naming the JSON path."""
    if not isinstance(config, dict):
        raise ValidationError({field: "Must be a JSON object."})
    cls = backend_class(backend)
    try:
        cls(config=config, context=context or {}).validate()
    except NetjsonValidationError as exc:
        raise _netjson_error(exc, field) from None


def system_context(device):
    return {
        "id": str(device.pk),
        "key": device.key,
        "name": device.name,
        "mac_address": device.mac_address,
        "organization": str(device.organization_id),
        "hardware_id": device.hardware_id,
        "model": device.model,
        "os": device.os,
        "system": device.system,
        "management_ip": device.management_ip or "",
    }


def build_context(config, templates, organization_context):
    """Variables, lowest priority first: system, template defaults, extensions (VPN clients), organization,
    group, device."""
    device = config.device
    context = system_context(device)
    for template in templates:
        context.update(template.default_values or {})
    if config.pk:  # per-device values of extensions (VPN clients) replace the templates' placeholders
        context.update(extensions.extra_context(config))
    context.update(organization_context or {})
    if device.group_id:
        context.update(device.group.context or {})
    context.update(config.context or {})
    return context


def variables_for(config):
    """Every variable a config sees except template defaults (used to validate the config on its own)."""
    from .models import OrganizationConfigSettings

    row = OrganizationConfigSettings.objects.filter(organization_id=config.device.organization_id).first()
    return build_context(config, [], row.context if row else {})


def make_backend(config, templates, organization_context):
    cls = backend_class(config.backend)
    return cls(
        config=config.config or {},
        templates=[template.config or {} for template in templates],
        context=build_context(config, templates, organization_context),
    )


def render_archive(config, templates, organization_context):
    """(archive bytes, checksum) of a config. Raises Django ValidationError when the result is invalid."""
    backend = make_backend(config, templates, organization_context)
    try:
        archive = backend.generate().getvalue()
    except NetjsonValidationError as exc:
        raise _netjson_error(exc, "config") from None
    return archive, hashlib.md5(archive, usedforsecurity=False).hexdigest()


def render_text(config, templates, organization_context):
    return make_backend(config, templates, organization_context).render()


def render_template_archive(template):
    """A template on its own, with its default values as variables (the template download)."""
    cls = backend_class(template.backend)
    backend = cls(config=template.config or {}, context=template.default_values or {})
    try:
        return backend.generate().getvalue()
    except NetjsonValidationError as exc:
        raise _netjson_error(exc, "config") from None

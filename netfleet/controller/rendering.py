"""Rendering device configurations with netjsonconfig.

The archive is netjsonconfig's tar.gz (entries with mtime 0, gzip mtime 0, stable order), so the same inputs
give the same bytes; its md5 is the checksum the agent verifies.
"""

import functools
import hashlib

import fastjsonschema
from django.core.exceptions import ValidationError
from jinja2 import Environment, PackageLoader
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError as JsonSchemaError
from netjsonconfig import OpenWisp, OpenWrt
from netjsonconfig.backends.base.backend import format_checker as netjsonconfig_format_checker
from netjsonconfig.exceptions import ValidationError as NetjsonValidationError

from . import extensions
from .choices import ConfigBackend


def _with_compiled_templates(renderer_class):
    """The renderer with one Jinja environment for the process: netjsonconfig builds a new environment on every
    render, so its templates were compiled again for each config (most of a cold render's time)."""
    # the same environment netjsonconfig builds (configuration files, not HTML: no autoescaping)
    environment = Environment(loader=PackageLoader(renderer_class.__module__, "templates"), trim_blocks=True)  # noqa: S701
    # same module and name as the original: the template package and file are found from them
    attributes = {"template_env": environment, "__module__": renderer_class.__module__}
    return type(renderer_class.__name__, (renderer_class,), attributes)


def _compiled_check(schema):
    """A compiled validator of the backend schema (built on first use: compiling takes ~0.5 s per schema),
    with netjsonconfig's format checks."""
    formats = {}
    for name, (check, raises) in netjsonconfig_format_checker.checkers.items():

        def accepts(value, check=check, raises=raises):
            try:
                return bool(check(value))
            except raises:
                return False

        formats[name] = accepts
    return fastjsonschema.compile(schema, formats=formats)


def _with_compiled_schema(backend_class):
    """The backend validating a config with a compiled schema check, and with jsonschema (netjsonconfig's own
    validator, built once per backend instead of per call) only to explain an invalid one with its JSON path."""
    validator = Draft4Validator(backend_class.schema, format_checker=netjsonconfig_format_checker)
    compiled = functools.cache(lambda: _compiled_check(backend_class.schema))

    def validate(self):
        try:
            try:
                compiled()(self.config)
            except fastjsonschema.JsonSchemaException:
                validator.validate(self.config)
            self._validate_file_paths()
        except JsonSchemaError as exc:
            raise NetjsonValidationError(exc) from None

    renderer = _with_compiled_templates(backend_class.renderer)
    # the original module too: the OpenWisp backend finds its own templates from it
    attributes = {"validate": validate, "renderer": renderer, "__module__": backend_class.__module__}
    return type(backend_class.__name__, (backend_class,), attributes)


BACKENDS = {
    ConfigBackend.OPENWRT: _with_compiled_schema(OpenWrt),
    ConfigBackend.OPENWISP: _with_compiled_schema(OpenWisp),
}


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

"""Controller services: device lifecycle, template assignment, config refresh and the agent's cached answers.

A config's checksum is persisted; `refresh_configs` re-renders and flips status to `modified` only when the
checksum really changed, then updates the agent cache. Everything that can change a rendered config calls it
for exactly the configs it affects (a few inline, many in background chunks).
"""

import functools
import hashlib
import operator
import secrets
from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q

from netfleet.accounts.models import Organization
from netfleet.core.exceptions import Conflict, NetfleetError
from netfleet.core.sql import placeholders, table, uuid_param, value_where

from . import extensions, rendering
from .choices import ConfigBackend, ConfigStatus
from .models import (
    Config,
    ConfigTemplate,
    Device,
    DeviceGroup,
    OrganizationConfigSettings,
    Template,
    normalize_mac,
)

AGENT_CACHE_PREFIX = "controller:agent:"
ARCHIVE_CACHE_PREFIX = "controller:archive:"


class DeviceLimitReached(Conflict):
    default_message = "The organization has reached its device limit"


class DeviceIsActive(Conflict):
    default_message = "Deactivate the device first (or pass ?force=true)"


class DeviceDeactivated(NetfleetError):
    status_code = 403
    default_message = "device deactivated"


# --- organization settings ----------------------------------------------------------------------------------


def digest_secret(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def organization_settings(organization):
    """The organization's controller settings, created with a fresh shared secret on first use."""
    found = OrganizationConfigSettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    secret = secrets.token_hex(16)
    settings_row, _ = OrganizationConfigSettings.objects.get_or_create(
        organization=organization, defaults={"shared_secret": secret, "shared_secret_digest": digest_secret(secret)}
    )
    return settings_row


def regenerate_shared_secret(settings_row):
    secret = secrets.token_hex(16)
    settings_row.shared_secret, settings_row.shared_secret_digest = secret, digest_secret(secret)
    settings_row.save(update_fields=["shared_secret", "shared_secret_digest", "modified"])
    return settings_row


def organization_for_secret(secret):
    return (
        OrganizationConfigSettings.objects.select_related("organization")
        .filter(shared_secret_digest=digest_secret(secret or ""))
        .first()
    )


def _organization_contexts(organization_ids):
    """{organization id: its variables} in one statement (a refresh may span many organizations)."""
    rows = OrganizationConfigSettings.objects.filter(organization_id__in=set(organization_ids))
    return {organization_id: context or {} for organization_id, context in rows.values_list("organization", "context")}


def _organization_context(organization_id):
    """One organization's variables (read once per render of a single config: written out, see core.sql)."""
    return value_where(OrganizationConfigSettings, "context", organization=organization_id) or {}


# --- templates ----------------------------------------------------------------------------------------------


def templates_visible_to(organization_id):
    return Template.objects.filter(Q(organization_id=organization_id) | Q(organization__isnull=True))


def required_templates(organization_id, backend):
    return list(templates_visible_to(organization_id).filter(required=True, backend=backend).order_by("name"))


def default_templates(organization_id, backend, tags=()):
    return _templates_for_new_config(organization_id, backend, tags)[0]


def _json_contains_supported():
    from django.db import connection

    return connection.features.supports_json_field_contains


def _template_ids_with_tag(tag):
    return [pk for pk, tags in Template.objects.values_list("pk", "tags") if tag in (tags or [])]


def set_templates(config, templates, *, required=None, new=False):
    """Assign templates in the given order. The organization's required templates stay (first, if missing).
    `required` when the caller has them already; `new` for a config that has no templates yet."""
    organization_id = config.device.organization_id
    chosen = list(dict.fromkeys(templates))
    errors = []
    for template in chosen:
        if template.organization_id not in (None, organization_id):
            errors.append(f"Template {template.pk} belongs to another organization.")
        elif template.backend != config.backend:
            errors.append(f"Template {template.name!r} is for {template.backend}, not {config.backend}.")
    if required is None:
        required = required_templates(organization_id, config.backend)
    missing = [t for t in required if t not in chosen]
    if missing and not new and ConfigTemplate.objects.filter(config=config, template__in=missing).exists():
        names = ", ".join(repr(t.name) for t in missing)
        errors.append(f"Required templates cannot be removed: {names}.")
    if errors:
        raise ValidationError({"config.templates": errors})
    ordered = missing + chosen
    if not new:
        ConfigTemplate.objects.filter(config=config).delete()
    ConfigTemplate.objects.bulk_create(
        [ConfigTemplate(config=config, template=template, order=index) for index, template in enumerate(ordered)]
    )
    return ordered


# --- devices ------------------------------------------------------------------------------------------------


def check_device_limit(organization, limit):
    """`limit`: the organization's device_limit (0 or None: no limit)."""
    if limit and Device.objects.filter(organization=organization).count() >= limit:
        raise DeviceLimitReached(f"The organization has reached its limit of {limit} devices")


def clean_new(instance, *, trusted=()):
    """`full_clean` of an instance about to be inserted, minus what costs a query each under the write lock: the
    existence of the foreign keys in `trusted` (instances the caller fetched or just created) and uniqueness, which
    the database's constraints enforce anyway (a duplicate is an IntegrityError: a 409 from the API, which checks
    names and MACs first for a friendlier message, and a 400 to a registering agent)."""
    errors = {}
    for step in (lambda: instance.clean_fields(exclude={"id", *trusted}), instance.clean):
        try:
            step()
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def _templates_for_new_config(organization_id, backend, tags):
    """(default and tagged templates, required templates) of a new config, visible to the organization, by name.

    Every device creation reads them under the database's write lock: one written-out statement (a raw
    queryset: instances as the ORM makes them), since compiling the ORM's OR'd conditions cost more than the
    query. Tagged ones are looked up by the ORM first, only when the device brings tags."""
    tagged = []
    if tags:
        with_a_tag = functools.reduce(operator.or_, [_tag_condition(tag) for tag in tags])
        tagged = [uuid_param(pk) for pk in Template.objects.filter(with_a_tag).values_list("pk", flat=True)]
    quote = connection.ops.quote_name
    chosen_by = [quote("default"), quote("required")] + ([f"id IN ({placeholders(tagged)})"] if tagged else [])
    sql = (
        f"SELECT * FROM {table(Template)} "  # noqa: S608 - no user text
        "WHERE (organization_id = %s OR organization_id IS NULL) AND backend = %s "
        f"AND ({' OR '.join(chosen_by)}) ORDER BY name"
    )
    found = list(Template.objects.raw(sql, [uuid_param(organization_id), backend, *tagged]))
    chosen = [t for t in found if t.default or any(tag in (t.tags or []) for tag in tags)]
    return chosen, [t for t in found if t.required]


def _tag_condition(tag):
    return Q(tags__contains=[tag]) if _json_contains_supported() else Q(pk__in=_template_ids_with_tag(tag))


@transaction.atomic
def create_device(*, organization, config=None, templates=None, tags=(), **fields):
    """Create a device with its config: default (and tagged) templates are added, required ones always.

    Every device creation goes through here (API, agent registration) and all of it holds the database's write
    lock on SQLite, so it reads what it needs once and renders the config it just built without reloading it."""
    limit, organization_context = (
        OrganizationConfigSettings.objects.filter(organization=organization)
        .values_list("device_limit", "context")
        .first()
    ) or (None, {})
    check_device_limit(organization, limit)
    device = Device(organization=organization, **fields)
    clean_new(device, trusted=["organization"])
    device.save()
    config_fields = dict(config or {})
    backend = config_fields.pop("backend", None) or "netjsonconfig.OpenWrt"
    device_config = Config(device=device, backend=backend, **config_fields)
    clean_new(device_config, trusted=["device"])
    device_config.save()
    chosen, required = _templates_for_new_config(organization.pk, backend, tags)
    if templates is not None:
        chosen = list(templates)
    ordered = set_templates(device_config, chosen, required=required, new=True)
    _refresh([(device_config, ordered)], {organization.pk: organization_context or {}}, force_modified=True, new=True)
    for hook in extensions.DEVICE_CREATED:
        hook(device)
    return device


@transaction.atomic
def update_device(*, device, config=None, templates=None, **fields):
    for name, value in fields.items():
        setattr(device, name, value)
    device.full_clean()
    device.save()
    device_config = device.config
    if config:
        for name, value in config.items():
            setattr(device_config, name, value)
        device_config.full_clean(exclude=["device"])
        device_config.save()
    if templates is not None:
        set_templates(device_config, templates)
    refresh_configs([device_config.pk])
    return device


def register_device(*, organization, key, backend, tags, fields, last_ip):
    """Agent self-registration. A device presenting a known key (the agent's consistent key: md5 of MAC or
    hardware id + shared secret) or a known MAC in the organization is updated; otherwise it is created.
    Returns (device, is_new)."""
    existing = None
    if key:
        existing = Device.objects.filter(key=key).select_related("config").first()
        if existing is not None and existing.organization_id != organization.pk:
            raise ValidationError({"key": "This key belongs to a device of another organization."})
    if existing is None:
        mac = normalize_mac(fields.get("mac_address"))
        existing = Device.objects.filter(organization=organization, mac_address=mac).first() if mac else None
    if existing is not None:
        if existing.is_deactivated:
            raise DeviceDeactivated()
        config = {"backend": backend} if backend != existing.config.backend else None
        update_device(device=existing, config=config, last_ip=last_ip, **fields)
        return existing, False
    extra = {"key": key} if key else {}
    device = create_device(
        organization=organization, config={"backend": backend}, tags=tags, last_ip=last_ip, **extra, **fields
    )
    return device, True


def deactivate_device(*, device):
    """Mark the device deactivated; its config goes `deactivating` until the agent reports, then `deactivated`."""
    with transaction.atomic():
        Device.objects.filter(pk=device.pk).update(is_deactivated=True)
        Config.objects.filter(device=device).update(status=ConfigStatus.DEACTIVATING)
    forget_agent_cache(device.pk)
    device.is_deactivated = True
    return device


def activate_device(*, device):
    with transaction.atomic():
        Device.objects.filter(pk=device.pk).update(is_deactivated=False)
        Config.objects.filter(device=device).update(status=ConfigStatus.MODIFIED)
    forget_agent_cache(device.pk)
    device.is_deactivated = False
    return device


def delete_device(*, device, force=False):
    """An active device (config not deactivated) is deleted only with force, as the reference system asks the
    operator to deactivate first so the agent can clean up."""
    status = Config.objects.filter(device=device).values_list("status", flat=True).first()
    if not force and not device.is_deactivated and status not in (None, ConfigStatus.DEACTIVATED):
        raise DeviceIsActive()
    forget_agent_cache(device.pk)
    with transaction.atomic():
        config = Config.objects.filter(device=device).first()
        if config is not None:
            for release in extensions.CONFIG_RELEASED:
                release(config)
        device.delete()


# --- config refresh and the agent cache ---------------------------------------------------------------------


def _configs_for_render(config_ids):
    return (
        Config.objects.filter(pk__in=config_ids)
        .select_related("device", "device__group")
        .prefetch_related("template_links__template")
    )


def _ordered_templates(config):
    """A config's templates in order, from its prefetched links (`_configs_for_render`)."""
    return [link.template for link in sorted(config.template_links.all(), key=lambda link: link.order)]


def render_config(config, organization_context=None):
    templates = _ordered_templates(config)
    if organization_context is None:
        organization_context = _organization_context(config.device.organization_id)
    return rendering.render_archive(config, templates, organization_context)


def refresh_configs(config_ids, *, force_modified=False):
    """Re-render configs; those whose checksum changed become `modified`. Returns the ids that changed."""
    configs = list(_configs_for_render(config_ids))
    items = [(config, _ordered_templates(config)) for config in configs]
    contexts = _organization_contexts(config.device.organization_id for config in configs)
    changed = _refresh(items, contexts, force_modified=force_modified)
    if changed:
        for hook in extensions.CONFIGS_MODIFIED:
            hook(changed)
    return changed


def _refresh(items, organization_contexts, *, force_modified=False, new=False):
    """Render (config, its ordered templates) pairs, store changed checksums, remember the agent's answers.
    `new`: configs created in this transaction. Returns the ids of the configs that changed."""
    changed = []
    for config, templates in items:
        for hook in extensions.TEMPLATES_CHANGED:  # e.g. VPN clients for the config's VPN templates
            hook(config, templates, new)
    for config, templates in items:
        context = organization_contexts.get(config.device.organization_id, {})
        archive, checksum = rendering.render_archive(config, templates, context)
        if checksum != config.checksum or force_modified:
            updates = {"checksum": checksum}
            if config.status not in (ConfigStatus.DEACTIVATING, ConfigStatus.DEACTIVATED):
                updates["status"] = ConfigStatus.MODIFIED
            Config.objects.filter(pk=config.pk).update(**updates)
            changed.append(config.pk)
        remember_agent_answer(config.device, checksum, archive)
    return changed


def refresh_affected(*, config_ids):
    """Refresh a set of configs: inline when few, in background chunks when many."""
    config_ids = list(config_ids)
    inline_limit = settings.NETFLEET_CONTROLLER_INLINE_REFRESH
    device_ids = Config.objects.filter(pk__in=config_ids).values_list("device_id", flat=True)
    cache.delete_many([agent_cache_key(device_id) for device_id in device_ids])
    if len(config_ids) <= inline_limit:
        return refresh_configs(config_ids)
    from . import tasks

    chunk = settings.NETFLEET_CONTROLLER_REFRESH_CHUNK
    for start in range(0, len(config_ids), chunk):
        batch = [str(pk) for pk in config_ids[start : start + chunk]]
        transaction.on_commit(lambda batch=batch: tasks.refresh_configs.delay(batch))
    return []


def configs_using_template(template):
    return (
        Config.objects.filter(Q(template_links__template=template) | Q(device__group__templates=template))
        .values_list("pk", flat=True)
        .distinct()
    )


def _hex(device_id):
    return device_id.hex if hasattr(device_id, "hex") else str(device_id).replace("-", "")


def agent_cache_key(device_id):
    return f"{AGENT_CACHE_PREFIX}{_hex(device_id)}"


def archive_cache_key(device_id, checksum):
    """Archives are cached by content (their checksum): an entry is never stale, so it may live long in every
    process's cache; a changed config gets a new key and its old archive simply expires."""
    return f"{ARCHIVE_CACHE_PREFIX}{_hex(device_id)}:{checksum}"


ARCHIVE_CACHE_SECONDS = 24 * 3600


def agent_ttl():
    return settings.NETFLEET_CONTROLLER_AGENT_CACHE_SECONDS


def remember_agent_state(device, checksum):
    """Cache what a checksum poll needs (key, checksum, addresses) without the archive."""
    state = {
        "key": device.key,
        "checksum": checksum,
        "name": device.name,
        "last_ip": device.last_ip,
        "management_ip": device.management_ip,
    }
    cache.set(agent_cache_key(device.pk), state, timeout=agent_ttl())
    return state


def stored_agent_state(device_id):
    """What a checksum poll needs, read from the database in one statement (an agent cache miss): the state
    remember_agent_state caches, or None for an unknown or deactivated device (or inactive organization).
    Written out: on this path the ORM's query compilation cost several times the query."""
    sql = (
        f"SELECT d.key, d.name, d.last_ip, d.management_ip, c.checksum FROM {table(Device)} d "  # noqa: S608
        f"JOIN {table(Organization)} o ON o.id = d.organization_id LEFT JOIN {table(Config)} c ON c.device_id = d.id "
        "WHERE d.id = %s AND NOT d.is_deactivated AND o.is_active"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Device._meta.pk.get_db_prep_value(device_id, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    key, name, last_ip, management_ip, checksum = row
    return {"key": key, "checksum": checksum or "", "name": name, "last_ip": last_ip, "management_ip": management_ip}


def remember_agent_answer(device, checksum, archive):
    """Cache what the agent polls for (its key, checksum and addresses, and the archive), so checksum polls
    never touch the database. Returns the cached state."""
    state = {
        "key": device.key,
        "checksum": checksum,
        "name": device.name,
        "last_ip": device.last_ip,
        "management_ip": device.management_ip,
    }
    cache.set(agent_cache_key(device.pk), state, timeout=agent_ttl())
    cache.set(archive_cache_key(device.pk, checksum), archive, timeout=ARCHIVE_CACHE_SECONDS)
    return state


def forget_agent_cache(device_id):
    cache.delete(agent_cache_key(device_id))


def forget_agent_cache_for_config(config_id):
    device_id = Config.objects.filter(pk=config_id).values_list("device_id", flat=True).first()
    if device_id is not None:
        forget_agent_cache(device_id)


class InvalidConfiguration(NetfleetError):
    status_code = 422


# --- REST API: downloads, group templates, template and group lifecycle, organization settings --------------


class DeviceHasNoConfig(Conflict):
    default_message = "The device has no configuration"


def render_device_archive(*, device):
    """The tar.gz the device's agent would download, rendered now from the stored configuration."""
    config = _configs_for_render(Config.objects.filter(device=device).values("pk")).first()
    if config is None:
        raise DeviceHasNoConfig()
    archive, _checksum = render_config(config)
    return archive


def group_templates(group, backend=None):
    """A group's templates in a stable order (by name: the many-to-many keeps no order of its own)."""
    if group is None:
        return []
    templates = group.templates.order_by("name", "pk")
    return list(templates.filter(backend=backend) if backend else templates)


def with_group_templates(templates, group, backend):
    """`templates`, then the group's templates of that backend that are not already among them."""
    chosen = list(dict.fromkeys(templates))
    return chosen + [template for template in group_templates(group, backend) if template not in chosen]


@transaction.atomic
def create_device_with_group_templates(*, organization, config=None, templates=None, tags=(), **fields):
    """`create_device`, adding the group's templates after the chosen (or default) ones, as a device joining
    a group gets them."""
    group = fields.get("group")
    if group is not None:
        backend = (config or {}).get("backend") or ConfigBackend.OPENWRT
        chosen = templates if templates is not None else default_templates(organization.pk, backend, tags)
        templates = with_group_templates(chosen, group, backend)
    return create_device(organization=organization, config=config, templates=templates, tags=tags, **fields)


@transaction.atomic
def update_device_with_group_templates(*, device, config=None, templates=None, **fields):
    """`update_device`; a device moving to another group trades the old group's templates (unless required,
    or listed in `templates`) for the new group's, which go after its own."""
    if "group" in fields:
        # compare with the stored group: the caller's instance may already carry the new one
        stored_group_id = Device.objects.filter(pk=device.pk).values_list("group_id", flat=True).first()
        new_group = fields["group"]
        if stored_group_id != (new_group.pk if new_group else None):
            old_group = DeviceGroup.objects.filter(pk=stored_group_id).first() if stored_group_id else None
            backend = (config or {}).get("backend") or device.config.backend
            if templates is None:
                leaving = set(group_templates(old_group)) - set(group_templates(new_group))
                current = device.config.ordered_templates()
                templates = [t for t in current if t not in leaving or t.required]
            templates = with_group_templates(templates, new_group, backend)
    return update_device(device=device, config=config, templates=templates, **fields)


def configs_in_group(group):
    return Config.objects.filter(device__group=group).values_list("pk", flat=True)


def _check_group_templates(group, templates):
    foreign = [t for t in templates if t.organization_id not in (None, group.organization_id)]
    if foreign:
        raise ValidationError({"templates": [f"Template {t.pk} belongs to another organization." for t in foreign]})


def _append_group_templates_to_members(group):
    """Give every member config the group's templates it lacks (matching its backend), after its own."""
    templates = group_templates(group)
    if not templates:
        return
    members = Config.objects.filter(device__group=group)
    linked, last_order = defaultdict(set), defaultdict(lambda: -1)
    for config_id, template_id, order in ConfigTemplate.objects.filter(config__in=members).values_list(
        "config_id", "template_id", "order"
    ):
        linked[config_id].add(template_id)
        last_order[config_id] = max(last_order[config_id], order)
    links = []
    for config_id, backend in members.values_list("pk", "backend"):
        for template in templates:
            if template.backend == backend and template.pk not in linked[config_id]:
                last_order[config_id] += 1
                links.append(ConfigTemplate(config_id=config_id, template=template, order=last_order[config_id]))
    ConfigTemplate.objects.bulk_create(links, batch_size=1000)


def _set_group_templates(group, templates):
    """Store a group's templates and apply the change to its members; True if the set changed."""
    _check_group_templates(group, templates)
    old, new = set(group_templates(group)), set(templates)
    if old == new:
        return False
    group.templates.set(new)
    leaving = [t for t in old - new if not t.required]
    ConfigTemplate.objects.filter(config__device__group=group, template__in=leaving).delete()
    _append_group_templates_to_members(group)
    return True


@transaction.atomic
def create_group(*, templates=(), **fields):
    group = DeviceGroup(**fields)
    group.full_clean()
    _check_group_templates(group, templates)
    group.save()
    group.templates.set(templates)
    return group


@transaction.atomic
def update_group(*, group, templates=None, **fields):
    """Update a group. Changing its variables or templates refreshes its members' configs; templates that
    leave the group leave its members too (unless required), new ones are appended to theirs."""
    stored_context = DeviceGroup.objects.filter(pk=group.pk).values_list("context", flat=True).first()
    for name, value in fields.items():
        setattr(group, name, value)
    group.full_clean()
    group.save()
    changed = group.context != stored_context
    if templates is not None:
        changed = _set_group_templates(group, templates) or changed
    if changed:
        refresh_affected(config_ids=configs_in_group(group))
    return group


@transaction.atomic
def delete_group(*, group):
    """Delete a group: its members stay, without the group's templates (except required ones) or variables."""
    config_ids = list(configs_in_group(group))
    leaving = [t for t in group_templates(group) if not t.required]
    ConfigTemplate.objects.filter(config__device__group=group, template__in=leaving).delete()
    group.delete()
    refresh_affected(config_ids=config_ids)


def _add_required_template(template):
    """A required template applies to every config of its organization (all organizations if shared) and
    backend; configs that lack it get it first, as `set_templates` places required templates."""
    configs = Config.objects.filter(backend=template.backend).exclude(template_links__template=template)
    if template.organization_id:
        configs = configs.filter(device__organization_id=template.organization_id)
    config_ids = list(configs.values_list("pk", flat=True))
    if not config_ids:
        return
    ConfigTemplate.objects.filter(config__in=configs).update(order=F("order") + 1)
    ConfigTemplate.objects.bulk_create(
        [ConfigTemplate(config_id=pk, template=template, order=0) for pk in config_ids], batch_size=1000
    )


@transaction.atomic
def create_template(**fields):
    template = Template(**fields)
    template.full_clean()
    template.save()
    if template.required:
        _add_required_template(template)
        refresh_affected(config_ids=configs_using_template(template))
    return template


@transaction.atomic
def update_template(*, template, **fields):
    """Update a template and refresh the configs that use it (directly or through a group); a template that
    becomes required is added to every config it applies to."""
    for name, value in fields.items():
        setattr(template, name, value)
    template.full_clean()
    template.save()
    if template.required:
        _add_required_template(template)
    refresh_affected(config_ids=configs_using_template(template))
    return template


@transaction.atomic
def delete_template(*, template):
    config_ids = list(configs_using_template(template))
    template.delete()
    refresh_affected(config_ids=config_ids)


@transaction.atomic
def update_organization_settings(*, settings_row, regenerate_secret=False, **fields):
    """Update an organization's controller settings. New variables (`context`) refresh every config of the
    organization; `regenerate_secret` replaces the shared secret that devices register with."""
    stored_context = (
        OrganizationConfigSettings.objects.filter(pk=settings_row.pk).values_list("context", flat=True).first()
    )
    for name, value in fields.items():
        setattr(settings_row, name, value)
    settings_row.full_clean()
    settings_row.save()
    if regenerate_secret:
        regenerate_shared_secret(settings_row)
    if settings_row.context != stored_context:
        refresh_affected(
            config_ids=Config.objects.filter(device__organization_id=settings_row.organization_id).values_list(
                "pk", flat=True
            )
        )
    return settings_row


# Lookups from a certificate's common name to a device group, registered by the apps that own certificates and
# VPN clients (they build on the controller, so the controller cannot import them): each is called as
# lookup(common_name=..., groups=..., organization_slugs=...) and returns a group of `groups` or None.
CERTIFICATE_GROUP_LOOKUPS = []


def group_for_certificate(*, common_name, groups, organization_slugs=()):
    """The group (among `groups`, the caller's) of the device whose VPN client certificate is named
    `common_name`, optionally only for certificates of the organizations with those slugs; None if none.

    The VPN app appends its lookup to CERTIFICATE_GROUP_LOOKUPS in its AppConfig.ready() (certificate ->
    VPN client -> config -> device -> group); until one is registered no common name is known.
    """
    for lookup in CERTIFICATE_GROUP_LOOKUPS:
        group = lookup(common_name=common_name, groups=groups, organization_slugs=tuple(organization_slugs))
        if group is not None:
            return group
    return None

"""The device agent protocol (openwisp-config): plain text and form-encoded, authenticated by the device key
(or, to register, the organization's shared secret). Byte-compatible with the reference controller so the real
agent works unmodified; every answer carries `X-Openwisp-Controller: true`.

The checksum poll is the hottest path of the system: on a cache hit it answers without touching the database.
"""

import re
import time
import uuid
from functools import wraps
from urllib.parse import parse_qs

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from netfleet.core.exceptions import NetfleetError
from netfleet.core.logging import current_request_id
from netfleet.core.middleware import REQUEST_ID_HEADER, host_allowed, log_request, request_ids

from . import services
from .choices import ConfigStatus
from .models import Config, Device

CONTROLLER_HEADER = "X-Openwisp-Controller"
DEVICE_FIELDS = ("hardware_id", "model", "os", "system")


class AgentError(Exception):
    def __init__(self, status, message):
        self.status, self.message = status, message


def text(body, status=200, content_type="text/plain"):
    response = HttpResponse(body, status=status, content_type=content_type)
    response[CONTROLLER_HEADER] = "true"
    return response


def _always(request):
    return True


def agent_view(*methods):
    """Plain Django view for the agent: method check, error lines, the controller header."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = text(f"error: method {request.method} not allowed\n", status=405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except AgentError as error:
                return text(f"error: {error.message}\n", status=error.status)

        wrapper.fast_path = _always  # FastPathMiddleware: the agent authenticates by device key, nothing else
        return wrapper

    return decorate


def required(data, name):
    value = data.get(name)
    if value is None or value == "":
        raise AgentError(400, f'missing required parameter "{name}"')
    return value


def parse_device_id(raw):
    try:
        return uuid.UUID(raw)  # accepts 32 hex digits (what the agent sends) and the dashed form
    except ValueError:
        raise AgentError(404, "device not found") from None


def load_device(device_id, key):
    """The device for an agent request, or the protocol's 404/403."""
    device = Device.objects.select_related("organization", "config").filter(pk=parse_device_id(device_id)).first()
    if device is None or device.is_deactivated or not device.organization.is_active:
        raise AgentError(404, "device not found")
    if device.key != key:
        raise AgentError(403, "wrong key")
    return device


def client_ip(request):
    return request.META.get("REMOTE_ADDR") or None


def _note_addresses(device_id, request, cached):
    """Persist last_ip / management_ip only when they change, so steady polling writes nothing."""
    last_ip = client_ip(request)
    management_ip = request.GET.get("management_ip") or None
    updates = {}
    if last_ip and last_ip != cached.get("last_ip"):
        updates["last_ip"] = last_ip
    if management_ip and management_ip != cached.get("management_ip"):
        try:
            Device._meta.get_field("management_ip").clean(management_ip, None)
        except ValidationError:
            raise AgentError(400, "invalid management_ip") from None
        updates["management_ip"] = management_ip
    if updates:
        Device.objects.filter(pk=device_id).update(**updates)
        cached.update(updates)
    return bool(updates)


def _agent_state(device_id, key):
    """(state, from_cache) for a device. On a cache miss the stored checksum answers (one query); only a config
    never rendered is rendered here."""
    cached = cache.get(services.agent_cache_key(device_id))
    if cached is not None:
        if cached["key"] != key:
            raise AgentError(403, "wrong key")
        return cached, True
    stored = services.stored_agent_state(device_id)
    if stored is None:
        raise AgentError(404, "device not found")
    if stored["key"] != key:
        raise AgentError(403, "wrong key")
    if stored["checksum"]:
        cache.set(services.agent_cache_key(device_id), stored, timeout=services.agent_ttl())
        return stored, False
    device = load_device(device_id.hex, key)  # a config never rendered: render it now
    services.refresh_configs([device.config.pk])
    return cache.get(services.agent_cache_key(device_id)), False


@agent_view("GET", "HEAD")
def checksum(request, device_id):
    key = required(request.GET, "key")
    device_uuid = parse_device_id(device_id)
    state, _ = _agent_state(device_uuid, key)
    if _note_addresses(device_uuid, request, state):
        cache.set(services.agent_cache_key(device_uuid), state, timeout=services.agent_ttl())
    return text(state["checksum"])


@agent_view("GET", "HEAD")
def download_config(request, device_id):
    key = required(request.GET, "key")
    device_uuid = parse_device_id(device_id)
    state, _ = _agent_state(device_uuid, key)
    archive = cache.get(services.archive_cache_key(device_uuid, state["checksum"]))
    if archive is None:
        # render now; if the result differs from the stored checksum, refresh_configs records the new one (and
        # `modified`), so the archive always matches the checksum the agent is told
        config_id = Config.objects.filter(device_id=device_uuid).values_list("pk", flat=True).get()
        services.refresh_configs([config_id])
        state = cache.get(services.agent_cache_key(device_uuid))
        archive = cache.get(services.archive_cache_key(device_uuid, state["checksum"]))
    if _note_addresses(device_uuid, request, state):
        cache.set(services.agent_cache_key(device_uuid), state, timeout=services.agent_ttl())
    response = text(archive, content_type="application/octet-stream")
    response["Content-Disposition"] = f"attachment; filename={state['name']}.tar.gz"
    return response


@agent_view("POST")
def report_status(request, device_id):
    key = required(request.POST, "key")
    status = required(request.POST, "status")
    if status not in (ConfigStatus.APPLIED, ConfigStatus.ERROR):
        raise AgentError(400, 'status must be "applied" or "error"')
    device = load_device(device_id, key)
    config = device.config
    if status == ConfigStatus.APPLIED and config.status == ConfigStatus.DEACTIVATING:
        status = ConfigStatus.DEACTIVATED  # the agent applied the empty configuration
    error_reason = request.POST.get("error_reason", "")[:1024] if status == ConfigStatus.ERROR else ""
    Config.objects.filter(pk=config.pk).update(status=status, error_reason=error_reason)
    return text(f"report-result: success\ncurrent-status: {status}\n")


@agent_view("POST")
def update_info(request, device_id):
    key = required(request.POST, "key")
    device = load_device(device_id, key)
    updates = {name: request.POST[name][:128] for name in ("model", "os", "system") if name in request.POST}
    if updates:
        Device.objects.filter(pk=device.pk).update(**updates)
        services.refresh_configs([device.config.pk])  # system variables may render differently
    return text("update-info: success\n")


@agent_view("POST")
def register(request):
    data = request.POST
    secret = required(data, "secret")
    for name in ("name", "mac_address", "backend"):
        required(data, name)
    settings_row = services.organization_for_secret(secret)
    if settings_row is None or not settings_row.organization.is_active:
        raise AgentError(403, "unrecognized secret")
    if not settings_row.registration_enabled:
        raise AgentError(403, "registration disabled")
    organization = settings_row.organization
    fields = {name: data.get(name, "") for name in DEVICE_FIELDS}
    fields.update(name=data["name"], mac_address=data["mac_address"])
    if data.get("management_ip"):
        fields["management_ip"] = data["management_ip"]
    tags = [tag for tag in data.get("tags", "").replace(",", " ").split() if tag]
    try:
        with transaction.atomic():
            device, is_new = services.register_device(
                organization=organization,
                key=data.get("key") or None,
                backend=data["backend"],
                tags=tags,
                fields=fields,
                last_ip=client_ip(request),
            )
    except services.DeviceDeactivated:
        raise AgentError(403, "device deactivated") from None
    except ValidationError as exc:
        raise AgentError(400, _validation_text(exc)) from None
    except IntegrityError:
        raise AgentError(400, "a device with this name or MAC address already exists") from None
    except NetfleetError as exc:
        raise AgentError(exc.status_code if exc.status_code < 500 else 400, exc.message) from None
    body = (
        "registration-result: success\n"
        f"uuid: {device.pk.hex}\n"
        f"key: {device.key}\n"
        f"hostname: {device.name}\n"
        f"is-new: {int(is_new)}\n"
    )
    return text(body, status=201)


def _validation_text(exc):
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)


_CHECKSUM_PATH = re.compile(r"^/controller/(?:device/)?checksum/([0-9a-fA-F-]{32,36})/?$")


def cached_checksum(environ, start_response):
    """A checksum poll answered from the agent cache below Django's request handling (netfleet.wsgi), or None
    when Django must answer it.

    The fleet polls this every few minutes per device; on a cache hit the view itself costs a tenth of Django's
    request cycle around it. Only that case is answered here — a GET whose device is cached with this key and
    whose addresses did not change — with what the view would answer (the checksum, the controller header, the
    request id, the access log line). Everything else (misses, wrong keys, new addresses, errors) goes through
    `checksum` above."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    match = _CHECKSUM_PATH.match(environ.get("PATH_INFO", ""))
    if match is None or not host_allowed(environ):
        return None
    query = parse_qs(environ.get("QUERY_STRING", ""))
    key = (query.get("key") or [""])[-1]
    try:
        device_id = uuid.UUID(match.group(1))
    except ValueError:
        return None
    state = cache.get(services.agent_cache_key(device_id)) if key else None
    if state is None or state["key"] != key:
        return None
    remote_addr = environ.get("REMOTE_ADDR") or None
    management_ip = (query.get("management_ip") or [""])[-1] or None
    if (remote_addr and remote_addr != state.get("last_ip")) or (
        management_ip and management_ip != state.get("management_ip")
    ):
        return None  # the view records the new address
    started = time.perf_counter()
    request_id, header_value = request_ids(environ.get("HTTP_X_REQUEST_ID"))
    token = current_request_id.set(request_id)
    try:
        body = state["checksum"].encode()
        headers = [
            ("Content-Type", "text/plain"),
            (CONTROLLER_HEADER, "true"),
            (REQUEST_ID_HEADER, header_value),
        ]
        start_response("200 OK", headers)
        path = environ["PATH_INFO"] if environ["PATH_INFO"].endswith("/") else environ["PATH_INFO"] + "/"
        log_request(method="GET", path=path, status=200, started=started, remote_addr=remote_addr)
        return [body]
    finally:
        current_request_id.reset(token)

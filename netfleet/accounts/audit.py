"""The audit trail: one call records who did what, when, from where and under which request id."""

from .models import AuditEvent


def client_ip(request):
    # Behind a proxy, REMOTE_ADDR is the proxy; a deployment that trusts X-Forwarded-For rewrites REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def record(action, *, request=None, actor=None, actor_label="", organization=None, target=None, details=None):
    """Append an audit event. `target` is any model instance (its type and id are recorded)."""
    if actor is None and request is not None and getattr(request, "user", None) and request.user.is_authenticated:
        actor = request.user
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor is not None else ""),
        organization=organization,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        request_id=getattr(request, "request_id", "") or "",
        source_ip=client_ip(request),
        details=details or {},
    )

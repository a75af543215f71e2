"""ASGI entry point: websockets only (HTTP is served over WSGI by granian, see DESIGN.md)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netfleet.settings")
django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from netfleet.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

from rest_framework.routers import DefaultRouter


class NetfleetRouter(DefaultRouter):
    """Routes end in a slash; the path normaliser makes it optional for clients."""

    include_root_view = False
    include_format_suffixes = False

from django.apps import AppConfig


class HotspotConfig(AppConfig):
    name = "netfleet.hotspot"
    label = "hotspot"
    verbose_name = "Hotspot packages"

from django.apps import AppConfig


class GeoConfig(AppConfig):
    name = "netfleet.geo"
    label = "geo"
    verbose_name = "Locations and floor plans"

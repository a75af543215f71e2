from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "netfleet.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "netfleet.pki"
    label = "pki"
    verbose_name = "Certificate authorities and certificates"

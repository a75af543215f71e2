from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "netfleet.accounts"
    label = "accounts"
    verbose_name = "Identity and access"

from django.apps import AppConfig


class ControllerConfig(AppConfig):
    name = "netfleet.controller"
    label = "controller"
    verbose_name = "Controller"

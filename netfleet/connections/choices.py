from django.db import models


class Connector(models.TextChoices):
    SSH = "ssh", "SSH"


class UpdateStrategy(models.TextChoices):
    OPENWRT_SSH = "openwrt-ssh", "OpenWrt (openwisp-config agent) over SSH"
    LINUX_SSH = "linux-ssh", "Generic Linux over SSH"


class CommandStatus(models.TextChoices):
    IN_PROGRESS = "in-progress", "in progress"
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"

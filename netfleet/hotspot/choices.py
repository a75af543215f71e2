from django.db import models


class PackageType(models.TextChoices):
    HOURLY = "hourly", "Hourly Package"
    MONTHLY = "monthly", "Monthly Package"


class PackageSyncState(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    ERROR = "error", "Error"

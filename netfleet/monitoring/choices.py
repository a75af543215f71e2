from django.db import models


class MonitoringStatus(models.TextChoices):
    UNKNOWN = "unknown", "unknown"
    OK = "ok", "ok"
    PROBLEM = "problem", "problem"
    CRITICAL = "critical", "critical"
    DEACTIVATED = "deactivated", "deactivated"


class AlertOperator(models.TextChoices):
    LESS_THAN = "<", "less than"
    GREATER_THAN = ">", "greater than"


class AlertKind(models.TextChoices):
    PROBLEM = "problem", "threshold crossed"
    RECOVERY = "recovery", "recovered"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"


class HealthMetric(models.TextChoices):
    """The metrics whose health is tracked (and may raise alerts)."""

    PING = "ping", "Ping"
    CONFIG_APPLIED = "config_applied", "Configuration applied"
    DATA_COLLECTED = "data_collected", "Data collected"
    CPU = "cpu", "CPU usage"
    MEMORY = "memory", "Memory usage"
    DISK = "disk", "Disk usage"

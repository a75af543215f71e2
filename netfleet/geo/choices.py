from django.db import models


class LocationType(models.TextChoices):
    OUTDOOR = "outdoor", "Outdoor"
    INDOOR = "indoor", "Indoor"

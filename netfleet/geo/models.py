"""Locations (outdoor or indoor, fixed or mobile), their floor plans, and where each device is."""

import re

import shapely.geometry
from django.core.exceptions import ValidationError
from django.db import models

from netfleet.core.models import NetfleetModel, OrganizationScopedModel, TenantManager

from .choices import LocationType
from .geometry import parse_geometry
from .images import floorplan_upload_to, validate_floorplan_image

INDOOR_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")


def normalize_indoor(value):
    """'-36, 264' -> '-36,264'; None if not "x,y" numbers."""
    match = INDOOR_RE.match(value or "")
    if match is None:
        return None
    return ",".join(match.groups())


class Location(OrganizationScopedModel):
    """A place devices are deployed: outdoor or indoor (a building with floor plans), fixed or mobile (a vehicle,
    whose devices report their own coordinates). `geometry` is GeoJSON ([longitude, latitude] order)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(max_length=75)
    type = models.CharField(max_length=8, choices=LocationType.choices, default=LocationType.OUTDOOR)
    is_mobile = models.BooleanField(default=False, help_text="Its devices update its coordinates themselves")
    address = models.CharField(max_length=256, blank=True)
    geometry = models.JSONField(
        null=True, blank=True, help_text="GeoJSON geometry; required unless the location is mobile"
    )
    # the point (or the geometry's centroid), kept in indexed columns for bounding-box searches (nearby devices)
    latitude = models.FloatField(null=True, blank=True, editable=False)
    longitude = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("name",)
        indexes = [
            models.Index(fields=("organization", "name"), name="geo_location_org_name"),
            models.Index(fields=("latitude", "longitude"), name="geo_location_lat_lon"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # derived columns only: they always follow `geometry`, whoever saves it
        if self.geometry:
            centroid = shapely.geometry.shape(self.geometry).centroid
            self.latitude, self.longitude = centroid.y, centroid.x
        else:
            self.latitude = self.longitude = None
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "geometry" in update_fields:
            kwargs["update_fields"] = {*update_fields, "latitude", "longitude"}
        super().save(*args, **kwargs)

    @property
    def is_indoor(self):
        return self.type == LocationType.INDOOR

    def clean(self):
        super().clean()
        if self.geometry in (None, "", {}):
            self.geometry = None
            if not self.is_mobile:
                raise ValidationError(
                    {"geometry": ValidationError("Required unless the location is mobile.", "required")}
                )
            return
        try:
            self.geometry = parse_geometry(self.geometry)
        except ValidationError as exc:
            raise ValidationError({"geometry": exc}) from None


class FloorPlan(OrganizationScopedModel):
    """The image of one floor of an indoor location; devices are placed on it with `indoor` pixel coordinates."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="floorplans")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="floorplans")
    floor = models.SmallIntegerField()
    image = models.ImageField(upload_to=floorplan_upload_to, max_length=255, validators=[validate_floorplan_image])

    class Meta:
        ordering = ("floor", "created")
        constraints = [models.UniqueConstraint(fields=("location", "floor"), name="geo_floorplan_location_floor")]

    def __str__(self):
        return f"{self.location} floor {self.floor}"

    def clean(self):
        super().clean()
        if not self.location_id:
            return
        if not self.location.is_indoor:
            raise ValidationError({"location": "A floor plan can be added only to an indoor location."})
        if self.organization_id and self.organization_id != self.location.organization_id:
            raise ValidationError({"location": "This location belongs to another organization."})
        self.organization_id = self.location.organization_id


class DeviceLocation(NetfleetModel):
    """Where a device is: a location and, indoors, a floor plan and the point on it (`indoor`: "x,y" pixels
    from the image's top left corner)."""

    device = models.OneToOneField("controller.Device", on_delete=models.CASCADE, related_name="devicelocation")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="device_locations")
    floorplan = models.ForeignKey(
        FloorPlan, on_delete=models.SET_NULL, null=True, blank=True, related_name="device_locations"
    )
    indoor = models.CharField(max_length=64, blank=True, help_text='"x,y" on the floor plan image')

    tenancy_organization_field = "device__organization"
    tenancy_site_field = "device__site"
    objects = TenantManager()

    class Meta:
        ordering = ("created",)

    def __str__(self):
        return f"{self.device} at {self.location}"

    @property
    def tenancy_organization_id(self):
        return self.device.organization_id

    @property
    def tenancy_site_id(self):
        return self.device.site_id

    def clean(self):
        super().clean()
        if not (self.device_id and self.location_id):
            return
        if self.location.organization_id != self.device.organization_id:
            raise ValidationError({"location": "This location belongs to another organization."})
        if self.floorplan_id:
            if not self.location.is_indoor:
                raise ValidationError({"floorplan": "A floor plan can be set only for an indoor location."})
            if self.floorplan.location_id != self.location_id:
                raise ValidationError({"floorplan": "This floor plan belongs to another location."})
        if self.indoor:
            if not self.floorplan_id:
                raise ValidationError({"indoor": "Indoor coordinates need a floor plan."})
            normalized = normalize_indoor(self.indoor)
            if normalized is None:
                raise ValidationError({"indoor": 'Must be "x,y" coordinates on the floor plan image, e.g. "-36,264".'})
            self.indoor = normalized

"""Locations, floor plans and device locations: the write paths, including the image files they own.

Image files are written by the model save inside the transaction; files that lose their object are removed only
after the transaction commits (a rollback keeps them), and new files are removed again if the write fails.
"""

import contextlib
import contextvars

from django.db import transaction

from .models import DeviceLocation, FloorPlan, Location

# names of the image files stored by the write in progress (see _guarding_new_files)
_new_files = contextvars.ContextVar("geo_new_files", default=None)


def devices_with_location(queryset, flag):
    """Devices that have (flag true) or have not (flag false) a location: the device list's `with_geo` filter."""
    return queryset.filter(devicelocation__isnull=not flag)


def _delete_files_on_commit(names):
    names = [name for name in names if name]
    if not names:
        return
    storage = FloorPlan._meta.get_field("image").storage

    def delete():
        for name in names:
            storage.delete(name)

    transaction.on_commit(delete)


@contextlib.contextmanager
def _guarding_new_files():
    """Within a write, image files it stored are removed again if it fails (its rows roll back). Nested writes
    leave the cleanup to the outermost one."""
    if _new_files.get() is not None:
        yield
        return
    token = _new_files.set([])
    try:
        yield
    except BaseException:
        storage = FloorPlan._meta.get_field("image").storage
        for name in _new_files.get():
            storage.delete(name)
        raise
    finally:
        _new_files.reset(token)


def _save_floorplan(floorplan, old_image=None):
    uploading = not floorplan.image._committed
    with _guarding_new_files():
        try:
            with transaction.atomic():
                floorplan.validated_save()
        finally:
            if uploading and floorplan.image._committed:  # stored, even if the row then failed
                _new_files.get().append(floorplan.image.name)
    if old_image and old_image != floorplan.image.name:
        _delete_files_on_commit([old_image])
    return floorplan


def create_floorplan(*, location, floor, image):
    """A floor plan for an indoor location (the image was checked by `images.prepare_upload`)."""
    floorplan = FloorPlan(organization_id=location.organization_id, location=location, floor=floor, image=image)
    return _save_floorplan(floorplan)


def update_floorplan(*, floorplan, **fields):
    """Change a floor plan; a replaced image file is deleted once the change is committed."""
    old_image = floorplan.image.name
    for name, value in fields.items():
        setattr(floorplan, name, value)
    if "location" in fields:
        floorplan.organization_id = floorplan.location.organization_id
    return _save_floorplan(floorplan, old_image=old_image)


def delete_floorplan(*, floorplan):
    """Delete a floor plan and (after commit) its image; devices placed on it keep their location only."""
    with transaction.atomic():
        DeviceLocation.objects.filter(floorplan=floorplan).update(floorplan=None, indoor="")
        name = floorplan.image.name
        floorplan.delete()
        _delete_files_on_commit([name])


def _remove_floorplans(location):
    names = list(location.floorplans.values_list("image", flat=True))
    DeviceLocation.objects.filter(location=location).update(floorplan=None, indoor="")
    location.floorplans.all().delete()
    _delete_files_on_commit(names)


def _write_first_floorplan(location, data):
    """Create the location's floor plan, or change its first one: only that one is editable through a location."""
    first = location.floorplans.first()
    if first is None:
        return create_floorplan(location=location, floor=data.get("floor"), image=data.get("image"))
    return update_floorplan(floorplan=first, **data)


def create_location(*, organization, floorplan=None, **fields):
    """A location, and with `floorplan` ({floor, image}) its floor plan, in one transaction."""
    with _guarding_new_files(), transaction.atomic():
        location = Location(organization=organization, **fields)
        location.validated_save()
        if floorplan:
            create_floorplan(location=location, floor=floorplan.get("floor"), image=floorplan.get("image"))
    return location


def update_location(*, location, floorplan=None, **fields):
    """Change a location. Turning it outdoor removes its floor plans and their images; `floorplan` changes its
    first floor plan (or creates one)."""
    with _guarding_new_files(), transaction.atomic():
        for name, value in fields.items():
            setattr(location, name, value)
        location.validated_save()
        if not location.is_indoor:
            _remove_floorplans(location)
        elif floorplan:
            _write_first_floorplan(location, floorplan)
    return location


def delete_location(*, location):
    """Delete a location with its floor plans (their images after commit) and the devices' positions there."""
    with transaction.atomic():
        names = list(location.floorplans.values_list("image", flat=True))
        location.delete()
        _delete_files_on_commit(names)


def _upsert_floorplan(location, data, current):
    """The floor plan a device-location request names by content: the location's plan for that floor (changed),
    else the device's current plan there (changed), else a new one."""
    floor = data.get("floor")
    existing = None
    if floor is not None:
        existing = location.floorplans.filter(floor=floor).first()
    elif current is not None and current.location_id == location.pk:
        existing = current
    if existing is None:
        return create_floorplan(location=location, floor=floor, image=data.get("image"))
    changes = {name: value for name, value in data.items() if value is not None}
    return update_floorplan(floorplan=existing, **changes) if changes else existing


def set_device_location(
    *, device, location=None, location_data=None, floorplan=None, floorplan_data=None, indoor=None, keep=()
):
    """Place a device. `location` is an existing location, or with `location_data` the one to change (or None to
    create it in the device's organization); `floorplan`/`floorplan_data` likewise. Fields named in `keep` keep
    their current value."""
    current = DeviceLocation.objects.filter(device=device).select_related("floorplan").first()
    with _guarding_new_files(), transaction.atomic():
        if location_data is not None:
            if location is None:
                location = create_location(organization=device.organization, **location_data)
            else:
                location = update_location(location=location, **location_data)
        if floorplan_data is not None:
            floorplan = _upsert_floorplan(location, floorplan_data, current and current.floorplan)
        # read again: changing the location may have removed its floor plans
        device_location = DeviceLocation.objects.filter(device=device).first() or DeviceLocation(device=device)
        device_location.location = location
        if "floorplan" not in keep:
            device_location.floorplan = floorplan
        if "indoor" not in keep:
            device_location.indoor = indoor or ""
        if not location.is_indoor:
            device_location.floorplan, device_location.indoor = None, ""
        device_location.validated_save()
    return device_location


def delete_device_location(*, device_location):
    device_location.delete()


def set_device_coordinates(*, device_location, geometry):
    """Move the device's location to `geometry` (a GeoJSON dict, validated by Location.clean)."""
    location = device_location.location
    location.geometry = geometry
    with transaction.atomic():
        location.validated_save()
    return location

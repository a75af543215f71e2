"""Where devices are, for nearby devices and the dashboard's location filters: the one place monitoring reads the
geo app (Location with a GeoJSON `geometry`, DeviceLocation linking a device to it).

Nearby devices need an indexed bounding-box prefilter. When geo's Location carries indexed `latitude` and
`longitude` columns (the point, or the centroid of the geometry) `candidates` filters on them in SQL. Until geo
provides them (NOTE for the geo app: two indexed FloatFields filled in `Location.clean()` are all this needs), the
box is applied in Python to the located devices of the organizations in scope.
"""

import math

import shapely.geometry

# The sphere of PostGIS's ST_DistanceSphere, which the reference system's nearby devices use: distances agree
# with it to millimetres (an ellipsoidal distance differs by up to 0.5 %).
EARTH_RADIUS_M = 6_370_986.0


def _location_model():
    from netfleet.geo.models import Location

    return Location


def has_indexed_coordinates():
    fields = {field.name for field in _location_model()._meta.get_fields()}
    return {"latitude", "longitude"} <= fields


def coordinates_of(location):
    """(latitude, longitude) of a location: its point, or the centroid of its geometry; None without geometry."""
    if has_indexed_coordinates() and location.latitude is not None:
        return location.latitude, location.longitude
    if not location.geometry:
        return None
    point = shapely.geometry.shape(location.geometry).centroid
    return point.y, point.x


def device_coordinates(device):
    device_location = getattr(device, "devicelocation", None)
    if device_location is None:
        return None
    return coordinates_of(device_location.location)


def distance_m(a, b):
    """Great-circle (haversine) distance in metres between two (latitude, longitude) pairs."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(origin, radius_m):
    """(min_lat, max_lat, min_lon, max_lon) containing every point within radius_m of origin."""
    lat, lon = origin
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    cos_lat = math.cos(math.radians(lat))
    dlon = 180.0 if cos_lat < 1e-9 else min(180.0, math.degrees(radius_m / (EARTH_RADIUS_M * cos_lat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _in_box(point, box):
    min_lat, max_lat, min_lon, max_lon = box
    return min_lat <= point[0] <= max_lat and min_lon <= point[1] <= max_lon


def located(devices):
    return devices.filter(devicelocation__isnull=False).select_related("devicelocation__location")


def nearby(devices, origin, max_distance=None):
    """[(device, distance_m)] of these devices that have a location, nearest first (within max_distance)."""
    candidates = located(devices)
    box = bounding_box(origin, max_distance) if max_distance is not None else None
    if box is not None and has_indexed_coordinates():
        candidates = candidates.filter(
            devicelocation__location__latitude__range=box[:2], devicelocation__location__longitude__range=box[2:]
        )
    found = []
    for device in candidates:
        point = coordinates_of(device.devicelocation.location)
        if point is None or (box is not None and not _in_box(point, box)):
            continue
        distance = distance_m(origin, point)
        if max_distance is None or distance <= max_distance:
            found.append((device, distance))
    found.sort(key=lambda item: (item[1], str(item[0].pk)))
    return found


def filter_by_location(devices, location_ids=(), floorplan_ids=()):
    if location_ids:
        devices = devices.filter(devicelocation__location_id__in=location_ids)
    if floorplan_ids:
        devices = devices.filter(devicelocation__floorplan_id__in=floorplan_ids)
    return devices

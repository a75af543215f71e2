"""Geometry input: GeoJSON objects and WKT text, validated with shapely and normalised to a GeoJSON dict.

A location's geometry is stored as GeoJSON in a JSON column (no GDAL/PostGIS needed). Every way in (API JSON,
multipart fields, the shell) goes through `parse_geometry()`, called by `Location.clean()`.
"""

import json
import math
from numbers import Real

import shapely
import shapely.geometry
import shapely.validation
import shapely.wkt
from django.core.exceptions import ValidationError
from shapely.errors import ShapelyError

# GeoJSON type -> how deeply its "coordinates" nest positions (0: a single position)
POSITION_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "Polygon": 2,
    "MultiLineString": 2,
    "MultiPolygon": 3,
}
GEOMETRY_TYPES = (*POSITION_DEPTH, "GeometryCollection")


def _invalid(message):
    return ValidationError(message, code="invalid")


def _check_position(position):
    if not isinstance(position, list | tuple) or not 2 <= len(position) <= 3:
        raise _invalid("A position must be [longitude, latitude] (optionally with an altitude).")
    for number in position:
        if isinstance(number, bool) or not isinstance(number, Real) or not math.isfinite(number):
            raise _invalid("Coordinates must be finite numbers.")
    longitude, latitude = position[0], position[1]
    if not (-180 <= longitude <= 180 and -90 <= latitude <= 90):
        raise _invalid("Coordinates are [longitude, latitude]: longitude within ±180, latitude within ±90.")


def _check_coordinates(coordinates, depth):
    if depth == 0:
        _check_position(coordinates)
        return
    if not isinstance(coordinates, list | tuple):
        raise _invalid("Coordinates are nested too shallowly for this geometry type.")
    for item in coordinates:
        _check_coordinates(item, depth - 1)


def _check_structure(value):
    """Strict GeoJSON shape checks that shapely's lenient `shape()` would let through ([[1, 2]] as a Point)."""
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise _invalid(f"Unsupported geometry type {kind!r}: use one of {', '.join(GEOMETRY_TYPES)}.")
    if kind == "GeometryCollection":
        geometries = value.get("geometries")
        if not isinstance(geometries, list):
            raise _invalid("A GeometryCollection needs a list of geometries.")
        for geometry in geometries:
            if not isinstance(geometry, dict):
                raise _invalid("Each geometry of a GeometryCollection must be a GeoJSON object.")
            _check_structure(geometry)
        return
    if "coordinates" not in value:
        raise _invalid("A GeoJSON geometry needs coordinates.")
    _check_coordinates(value["coordinates"], POSITION_DEPTH[kind])


def _from_text(text):
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise _invalid("Not valid GeoJSON.") from None
        return _from_geojson(value)
    try:
        return shapely.wkt.loads(text)
    except (ShapelyError, ValueError, TypeError):
        raise _invalid("Not valid WKT (e.g. POINT (12.512124 41.898903)) or GeoJSON.") from None


def _from_geojson(value):
    if not isinstance(value, dict):
        raise _invalid("Must be a GeoJSON geometry object or WKT text.")
    if value.get("type") == "Feature":
        value = value.get("geometry")
        if not isinstance(value, dict):
            raise _invalid("The Feature has no geometry.")
    value = dict(value)
    if "coordinates" not in value and "location" in value:
        # controller-api.txt's form example names the field `geometry.location` once
        value["coordinates"] = value.pop("location")
    coordinates = value.get("coordinates")
    if isinstance(coordinates, str):
        # multipart forms send `geometry.coordinates` as JSON text: "[12.51, 41.89]"
        try:
            value["coordinates"] = json.loads(coordinates)
        except ValueError:
            raise _invalid("Coordinates must be a JSON array such as [12.512124, 41.898903].") from None
    _check_structure(value)
    try:
        return shapely.geometry.shape(value)
    except (ShapelyError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _invalid(f"Not a valid {value['type']}: {exc}") from None


def to_geojson(geometry):
    """A shapely geometry as a plain GeoJSON dict (lists, not tuples, so it compares equal after a JSON trip)."""
    return json.loads(json.dumps(shapely.geometry.mapping(geometry)))


def parse_geometry(value):
    """GeoJSON (dict, Feature or JSON text) or WKT text -> a normalised GeoJSON dict; ValidationError if invalid."""
    geometry = _from_text(value) if isinstance(value, str) else _from_geojson(value)
    if geometry.is_empty:
        raise _invalid("The geometry is empty.")
    if not geometry.is_valid:
        raise _invalid(f"Invalid geometry: {shapely.validation.explain_validity(geometry)}.")
    normalised = to_geojson(geometry)
    if normalised["type"] == "GeometryCollection":
        _check_structure(normalised)
    else:
        _check_coordinates(normalised["coordinates"], POSITION_DEPTH[normalised["type"]])
    return normalised

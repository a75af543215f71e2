"""Geo test helpers: floor plan images made with Pillow, error envelope accessors."""

import io
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

POINT = {"type": "Point", "coordinates": [12.512124, 41.898903]}


def image_bytes(fmt="PNG", size=(40, 30), noise=False):
    if noise:  # random pixels do not compress: the file is about width * height * 3 bytes
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def upload(name="floorplan.png", fmt="PNG", content=None, **kwargs):
    return SimpleUploadedFile(name, content if content is not None else image_bytes(fmt, **kwargs))


def stored_files(media):
    folder = media / "floorplans"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error.get("details", [])}

"""Floor plan images: checked with Pillow (a real, whole image in an allowed format, within the size limits)."""

import uuid
import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models.fields.files import FieldFile
from PIL import Image, UnidentifiedImageError

# Pillow format -> (file extension, content type)
IMAGE_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {extension: content_type for extension, content_type in IMAGE_FORMATS.values()}
# Room for the other fields of a multipart request around the image (names, geometry, boundaries).
MULTIPART_OVERHEAD = 64 * 1024


class UploadLimit:
    """`max_body_size` of the upload views (read by BodyLimitMiddleware), from the setting at call time."""

    def __get__(self, instance, owner):
        return settings.NETFLEET_GEO_MAX_IMAGE_BYTES + MULTIPART_OVERHEAD


def image_format(file):
    """The Pillow format of an uploaded or stored image; ValidationError unless it is a real, allowed image."""
    limit = settings.NETFLEET_GEO_MAX_IMAGE_BYTES
    if file.size is not None and file.size > limit:
        raise ValidationError(f"The image is larger than the {limit}-byte limit.", code="max_size")
    position = file.tell() if hasattr(file, "tell") else 0
    try:
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                kind = image.format
                width, height = image.size
                if kind in IMAGE_FORMATS and width * height <= settings.NETFLEET_GEO_MAX_IMAGE_PIXELS:
                    image.verify()  # reads the whole file: catches truncated and corrupt images
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombWarning):
        raise ValidationError("Upload a valid image (PNG, JPEG, GIF or WEBP).", code="invalid_image") from None
    except Image.DecompressionBombError:
        raise ValidationError("The image has too many pixels.", code="max_pixels") from None
    finally:
        file.seek(position)
    if kind not in IMAGE_FORMATS:
        allowed = ", ".join(IMAGE_FORMATS)
        raise ValidationError(f"Unsupported image format {kind}: use {allowed}.", code="invalid_image")
    if width * height > settings.NETFLEET_GEO_MAX_IMAGE_PIXELS:
        raise ValidationError(
            f"The image has more than {settings.NETFLEET_GEO_MAX_IMAGE_PIXELS} pixels.", code="max_pixels"
        )
    return kind


def validate_floorplan_image(file):
    """Model field validator. Files already in storage were checked when uploaded and are not re-read."""
    if isinstance(file, FieldFile):
        if file._committed:
            return
        file = file.file
    image_format(file)


def prepare_upload(upload):
    """Validate a new upload and give it a random name with the extension of its real format."""
    kind = image_format(upload)
    upload.name = f"{uuid.uuid4().hex}.{IMAGE_FORMATS[kind][0]}"
    return upload


def floorplan_upload_to(instance, filename):
    return f"floorplans/{filename}"


def content_type_of(name):
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")

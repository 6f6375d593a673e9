"""Image checks shared by every path that accepts an image: PNG or JPEG, 64x64 to 4096x4096,
at most 8 MB, fully decodable. Decoding is bounded: dimensions are checked from the header before
any pixel is decoded, so a decompression bomb is refused without being expanded."""

from __future__ import annotations

import hashlib
import io
import math
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, ImageOps

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MIN_SIDE = 64
MAX_SIDE = 4096
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg"}

# A second line of defence behind the explicit side check.
Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE


class Rejection(StrEnum):
    TOO_LARGE_FILE = "too_large_file"
    UNSUPPORTED_TYPE = "unsupported_type"
    CORRUPT = "corrupt"
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"


# How each rejection reads on Loupe-native routes and ingest results (AILabTools codes).
AILAB_CODES_FOR = {
    Rejection.TOO_LARGE_FILE: "FILE_SIZE_EXCEEDS_LIMIT",
    Rejection.UNSUPPORTED_TYPE: "UNSUPPORTED_FILE_TYPES",
    Rejection.CORRUPT: "FILE_DECODING_FAILURE",
    Rejection.TOO_SMALL: "ERROR_LOW_RESOLUTION",
    Rejection.TOO_LARGE: "ERROR_HIGH_RESOLUTION",
}


class ImageRejected(ValueError):
    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "PNG" or "JPEG"
    width: int
    height: int
    size: int
    sha256: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def sniff_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    return None


def inspect_image(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES) -> ImageInfo:
    """Check and fully decode an image; ImageRejected says why it is refused. CPU-bound: call it
    from a worker thread on the event loop's behalf."""
    info, image = decode_image(data, max_bytes=max_bytes)
    image.close()
    return info


def decode_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, digest: bool = True, reduce_to: int | None = None
) -> tuple[ImageInfo, Image.Image]:
    """inspect_image that also returns the decoded image (the inference path scores it).
    `reduce_to` (pixels): a JPEG with more is decoded reduced (libjpeg's 1/2, 1/4 or 1/8 scaling,
    never below `reduce_to`), which costs a fraction of a full decode; the ImageInfo still gives the
    image's full displayed size. PNG has no reduced decode."""
    if len(data) > max_bytes:
        raise ImageRejected(
            Rejection.TOO_LARGE_FILE, f"image is {len(data)} bytes; the limit is {max_bytes} bytes"
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(Rejection.UNSUPPORTED_TYPE, "image is neither PNG nor JPEG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
            stored = img.size
            check_sides(*stored)
            reduced = False
            if reduce_to is not None and fmt == "JPEG" and stored[0] * stored[1] > reduce_to:
                scale = math.sqrt(reduce_to / (stored[0] * stored[1]))
                img.draft(img.mode, (math.ceil(stored[0] * scale), math.ceil(stored[1] * scale)))
                reduced = True
            img.load()
            img = as_seen(img)
            width, height = img.size
            if reduced:  # the full size as displayed: the stored one, turned as EXIF turned the image
                turned = (width - height) * (stored[0] - stored[1]) < 0
                width, height = (stored[1], stored[0]) if turned else stored
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(Rejection.TOO_LARGE, "image has too many pixels") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged files
        raise ImageRejected(Rejection.CORRUPT, f"image could not be decoded ({decoder_said(exc)})") from None
    sha = hashlib.sha256(data).hexdigest() if digest else ""
    return ImageInfo(fmt, width, height, len(data), sha), img


def as_seen(image: Image.Image) -> Image.Image:
    """The image as a person sees it, in 8 bits: upright (EXIF orientation applied, so masks come
    back in the displayed orientation), 16-bit and 32-bit greyscale scaled to 8 bits rather than
    clipped (Pillow's convert("RGB") turns every value above 255 white), palette, alpha and CMYK
    images in RGB, transparency laid on white as a viewer shows it. RGB and L pass unchanged."""
    upright = ImageOps.exif_transpose(image) or image
    mode = upright.mode
    if mode in ("RGB", "L"):
        return upright
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(upright, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if mode == "1":
        return upright.convert("L")
    if mode in ("P", "PA", "LA", "RGBA", "La", "RGBa") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return upright.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def decoder_said(exc: Exception) -> str:
    """Pillow's reason without the object reprs it puts in ("cannot identify image file
    <_io.BytesIO object at 0x7f...>"): a caller gets words, never our memory addresses."""
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(exc)) or exc.__class__.__name__


def check_sides(width: int, height: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageRejected(
            Rejection.TOO_SMALL, f"image is {width}x{height}; the minimum is {MIN_SIDE}x{MIN_SIDE}"
        )
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageRejected(
            Rejection.TOO_LARGE, f"image is {width}x{height}; the maximum is {MAX_SIDE}x{MAX_SIDE}"
        )

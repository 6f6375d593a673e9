"""Images are read as a person sees them, everywhere an image enters (loupe_common.images.as_seen
inside decode_image; training's decode_pixels; tagging): 16-bit greyscale scaled rather than
clipped, EXIF orientation applied (so masks come back in the displayed orientation), palette,
alpha and CMYK converted. The fuzz findings: a 16-bit PNG of a normal image scored
IsAnomalous true / Confidence 1.0, and a rotated JPEG got a mask of the stored orientation."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from helpers import pattern_png
from loupe_common.images import as_seen, decode_image
from loupe_models.preprocess import decode_pixels
from test_inference_runtime import runtime  # noqa: F401 (the module's trained model fixture)


def png(image: Image.Image, **save) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **save)
    return out.getvalue()


def grey16(seed: int) -> tuple[bytes, bytes]:
    """(8-bit greyscale PNG, the same picture as a 16-bit PNG)."""
    with Image.open(io.BytesIO(pattern_png(seed))) as image:
        grey = np.asarray(image.convert("L"))
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    return png(Image.fromarray(grey)), png(wide)


def rotated_jpeg(seed: int) -> tuple[bytes, Image.Image]:
    """A JPEG stored 96 wide x 160 tall with EXIF orientation 6 (shown 160 wide x 96 tall), and how it shows."""
    with Image.open(io.BytesIO(pattern_png(seed, size=160))) as image:
        shown = image.convert("RGB").crop((0, 32, 160, 128))  # 160 x 96 as a person sees it
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue(), shown


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    narrow, wide = grey16(3)
    _, eight = decode_image(narrow)
    info, sixteen = decode_image(wide)
    assert sixteen.mode == "L" and (info.width, info.height) == eight.size
    assert np.abs(np.asarray(sixteen, int) - np.asarray(eight, int)).max() <= 1
    assert np.allclose(decode_pixels(wide, 128)[0], decode_pixels(narrow, 128)[0], atol=1.01)  # training sees it so


def test_exif_orientation_is_applied_and_sizes_are_as_shown():
    data, shown = rotated_jpeg(4)
    info, image = decode_image(data)
    assert (info.width, info.height) == (160, 96) == image.size
    assert np.abs(np.asarray(image, int) - np.asarray(shown, int)).mean() < 6  # JPEG noise only


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "CMYK", "1", "I"])
def test_other_modes_become_rgb_or_l(mode):
    with Image.open(io.BytesIO(pattern_png(5))) as image:
        source = image.convert("RGB")
    converted = source.convert(mode) if mode != "I" else source.convert("L").convert("I")
    seen = as_seen(converted)
    assert seen.mode in ("RGB", "L") and seen.size == source.size
    if mode == "P":  # the palette's own colours, unchanged
        assert np.array_equal(np.asarray(seen), np.asarray(converted.convert("RGB")))
    if mode in ("CMYK", "I"):
        assert np.abs(np.asarray(seen.convert("L"), int) - np.asarray(source.convert("L"), int)).mean() < 8


def test_transparency_is_laid_on_white():
    rgba = Image.new("RGBA", (64, 64), (10, 20, 30, 0))
    assert np.asarray(as_seen(rgba)).min() == 255


def test_a_normal_image_in_16_bits_scores_as_in_8_bits(runtime):  # noqa: F811
    from loupe_inference.scoring import detect

    narrow, wide = grey16(420)
    eight, _, _ = detect(runtime, narrow, content_type="image/png", threshold=None, with_mask=True)
    sixteen, _, _ = detect(runtime, wide, content_type="image/png", threshold=None, with_mask=True)
    assert sixteen["DetectAnomalyResult"]["IsAnomalous"] == eight["DetectAnomalyResult"]["IsAnomalous"]
    assert sixteen["Score"] == pytest.approx(eight["Score"], rel=0.02)


def test_a_rotated_image_gets_its_mask_in_the_displayed_orientation(runtime):  # noqa: F811
    from loupe_inference.scoring import detect

    data, _ = rotated_jpeg(500)
    result, _, info = detect(runtime, data, content_type="image/jpeg", threshold=-1e9, with_mask=True)
    mask = Image.open(io.BytesIO(base64.b64decode(result["DetectAnomalyResult"]["AnomalyMask"])))
    assert mask.size == (160, 96) == (info.width, info.height)


def test_a_large_jpeg_is_decoded_reduced_with_its_full_displayed_size_kept(runtime):  # noqa: F811
    """Issue 19: the pixel work of one request is bounded; a 4000 x 3000 JPEG (shown turned by
    EXIF) is decoded at libjpeg's reduced scale, while its size, and its mask, stay the full ones."""
    from loupe_inference.scoring import detect

    with Image.open(io.BytesIO(pattern_png(501, defect=True, size=160))) as image:
        stored = image.convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=90, exif=exif.tobytes())
    data = out.getvalue()
    full_info, full = decode_image(data)
    info, reduced = decode_image(data, reduce_to=1024 * 1024)
    assert (full_info.width, full_info.height) == full.size == (3000, 4000)  # shown turned
    assert (info.width, info.height) == (3000, 4000)
    assert reduced.size == (1500, 2000)  # libjpeg's 1/2: the smallest scale keeping 1024 x 1024 pixels
    result, detection, info = detect(runtime, data, content_type="image/jpeg", threshold=-1e9, with_mask=True)
    mask = Image.open(io.BytesIO(base64.b64decode(result["DetectAnomalyResult"]["AnomalyMask"])))
    assert mask.size == (3000, 4000)
    png_result, _, _ = detect(runtime, png(full), content_type="image/png", threshold=-1e9, with_mask=True)
    assert detection.score == pytest.approx(png_result["Score"], abs=0.05 * abs(png_result["Score"]) + 1e-3)

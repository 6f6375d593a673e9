"""Manifest line parsing and image checks (the rules every manifest line goes through)."""

from __future__ import annotations

import json

import pytest

from helpers import png_bytes
from loupe_common.images import ImageRejected, Rejection, inspect_image
from loupe_dataset.manifest import LineError, parse_line, split_lines


def test_classification_line():
    text = json.dumps({"source-ref": "s3://b/k.png", "anomaly-label": 1,
                       "anomaly-label-metadata": {"class-name": "anomaly", "type": "groundtruth/image-classification"}})
    line = parse_line(3, text)
    assert (line.number, line.source_ref, line.label, line.mask_ref, line.note) == (3, "s3://b/k.png", 1, None, None)
    assert json.loads(line.text) == json.loads(text)


def classified(key: str, value, class_name) -> str:
    return json.dumps({"source-ref": "s3://b/k.png", key: value, f"{key}-metadata": {
        "class-name": class_name, "type": "groundtruth/image-classification", "human-annotated": "yes",
        "creation-date": "2021-10-12T14:16:45.668", "job-name": "labeling-job/classification-job", "confidence": 1}})


@pytest.mark.parametrize("text, label", [
    # The developer guide's own sample: the value says 1, class-name says normal. class-name decides.
    (classified("anomaly-label", 1, "normal"), 0),
    # AWS's lookoutvision helper library and workshop: any attribute name, 1 for normal.
    (classified("auto-label", 1, "normal"), 0),
    (classified("auto-label", 0, "anomaly"), 1),
    # AWS's CSV-to-manifest tool writes the value as a string.
    (classified("anomaly-label", "0", "normal"), 0),
    (classified("anomaly-label", "1", "anomaly"), 1),
    (classified("my-job-label", "1", "Anomaly"), 1),
    # Loupe's own short form, without metadata: the value decides.
    ('{"source-ref": "s3://b/k.png", "anomaly-label": 0}', 0),
    ('{"source-ref": "s3://b/k.png", "anomaly-label": "1"}', 1),
])
def test_the_label_is_the_class_name_of_the_classification_attribute(text, label):
    line = parse_line(1, text)
    assert (line.label, line.note) == (label, None)


@pytest.mark.parametrize("text, why", [
    (classified("anomaly-label", 1, "cracked"), "neither 'normal' nor 'anomaly'"),
    (classified("anomaly-label", 1, None), "neither"),
    (classified("anomaly-label", None, "normal"), "no value"),
    ('{"source-ref": "s3://b/k", "anomaly-label": 2}', "must be 0"),
    ('{"source-ref": "s3://b/k", "anomaly-label": true}', "must be 0"),
])
def test_what_cannot_be_classified_comes_in_unlabelled_with_the_reason(text, why):
    line = parse_line(1, text)
    assert line.label is None and why in line.note


def test_an_unlabelled_line_has_no_note():
    line = parse_line(1, '{"source-ref": "s3://b/k.png"}')
    assert (line.label, line.note) == (None, None)


# The developer guide's segmentation sample, as AWS wrote it.
SEGMENTED = {
    "source-ref": "s3://path-to-image", "anomaly-label": 1,
    "anomaly-label-metadata": {"class-name": "anomaly", "creation-date": "2021-10-12T14:16:45.668",
                               "human-annotated": "yes", "job-name": "labeling-job/classification-job",
                               "type": "groundtruth/image-classification", "confidence": 1},
    "anomaly-mask-ref": "s3://path-to-mask",
    "anomaly-mask-ref-metadata": {"internal-color-map": {
        "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.0},
        "1": {"class-name": "scratch", "hex-color": "#2ca02c", "confidence": 0.0},
        "2": {"class-name": "dent", "hex-color": "#1f77b4", "confidence": 0.0}},
        "type": "groundtruth/semantic-segmentation", "human-annotated": "yes",
        "creation-date": "2021-11-23T20:31:57.758889", "job-name": "labeling-job/segmentation-job"}}


def test_a_segmentation_line_keeps_its_classes_and_colours():
    line = parse_line(1, json.dumps(SEGMENTED))
    assert (line.label, line.mask_ref) == (1, "s3://path-to-mask")
    assert [(c.name, c.color) for c in line.anomaly_classes] == [("scratch", "#2ca02c"), ("dent", "#1f77b4")]
    assert line.background_colors == ("#ffffff",)


def test_the_mask_attribute_may_have_any_name_and_the_map_no_background():
    doc = {k: v for k, v in SEGMENTED.items() if not k.startswith("anomaly-mask-ref")}
    doc["cookie-mask"] = "s3://b/mask.png"
    doc["cookie-mask-metadata"] = {"type": "groundtruth/semantic-segmentation",
                                   "internal-color-map": {"1": {"class-name": "cracked", "hex-color": "#23A436"}}}
    line = parse_line(1, json.dumps(doc))
    assert line.mask_ref == "s3://b/mask.png" and line.background_colors == ()
    assert [(c.name, c.color) for c in line.anomaly_classes] == [("cracked", "#23A436")]


def test_a_mask_on_a_normal_line_is_not_used():
    doc = json.loads(json.dumps(SEGMENTED))
    doc["anomaly-label-metadata"]["class-name"] = "normal"
    line = parse_line(1, json.dumps(doc))
    assert (line.label, line.mask_ref, line.anomaly_classes) == (0, None, ())
    assert "not used" in line.note


def mask_png(colors: list[tuple[int, int, int]]):
    """A decoded RGB mask with a band of each colour."""
    import numpy as np
    from PIL import Image

    pixels = np.zeros((64, 64, 3), np.uint8)
    for i, color in enumerate(colors):
        pixels[i * 4:(i + 1) * 4] = color
    return Image.fromarray(pixels)


def test_mask_colours_are_checked_against_the_colour_map():
    from loupe_dataset.manifest import check_mask_colors

    line = parse_line(1, json.dumps(SEGMENTED))
    check_mask_colors(line, mask_png([(255, 255, 255), (0x2C, 0xA0, 0x2C), (0x1F, 0x77, 0xB4)]))
    check_mask_colors(line, mask_png([(0, 0, 0), (0x2C, 0xA0, 0x2C)]))  # black is background too
    with pytest.raises(LineError, match="#ff0000"):
        check_mask_colors(line, mask_png([(255, 0, 0), (0x2C, 0xA0, 0x2C)]))


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"anomaly-label": 0}', "source-ref"),
        ('{"source-ref": "s3://b/k", "x": "' + "y" * 8200 + '"}', "8192"),
        (json.dumps({**SEGMENTED, "anomaly-mask-ref-metadata": {"type": "groundtruth/semantic-segmentation"}}),
         "no internal-color-map"),
        (json.dumps({**SEGMENTED, "anomaly-mask-ref-metadata": {
            "type": "groundtruth/semantic-segmentation",
            "internal-color-map": {"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"}}}}), "no anomaly class"),
        (json.dumps({**SEGMENTED, "anomaly-mask-ref-metadata": {
            "type": "groundtruth/semantic-segmentation",
            "internal-color-map": {"1": {"class-name": "dent", "hex-color": "blue"}}}}), "hex-color"),
        (json.dumps({**SEGMENTED, "anomaly-mask-ref": 7}), "reference string"),
    ],
)
def test_unusable_lines_are_refused(text, reason):
    with pytest.raises(LineError, match=reason):
        parse_line(1, text)


def test_split_lines_numbers_skip_blanks_and_refuse_binary():
    assert split_lines(b'\xef\xbb\xbf{"a":1}\n\n  \n{"b":2}\r\n') == [(1, '{"a":1}'), (4, '{"b":2}')]
    with pytest.raises(LineError):
        split_lines(b"\xff\xfe\x00bad")


def test_images_pass_and_fail_for_the_right_reason():
    info = inspect_image(png_bytes(100, 80))
    assert (info.format, info.width, info.height, info.content_type) == ("PNG", 100, 80, "image/png")
    assert inspect_image(png_bytes(64, 64, fmt="JPEG")).format == "JPEG"
    cases = [
        (png_bytes(63, 100), Rejection.TOO_SMALL),
        (png_bytes(100, 40), Rejection.TOO_SMALL),
        (b"GIF89a" + b"\0" * 100, Rejection.UNSUPPORTED_TYPE),
        (png_bytes(100, 100)[:150], Rejection.CORRUPT),
        (png_bytes(100, 100), Rejection.TOO_LARGE_FILE),
    ]
    for data, reason in cases:
        with pytest.raises(ImageRejected) as excinfo:
            inspect_image(data, max_bytes=1000 if reason is Rejection.TOO_LARGE_FILE else 8 << 20)
        assert excinfo.value.reason is reason


def test_decompression_bomb_is_refused_from_the_header():
    import io
    import zlib
    import struct

    # A PNG header claiming 20000x20000 pixels with almost no data: refused before decoding.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    with pytest.raises(ImageRejected) as excinfo:
        inspect_image(bomb)
    assert excinfo.value.reason is Rejection.TOO_LARGE
    assert io  # keep the import group honest

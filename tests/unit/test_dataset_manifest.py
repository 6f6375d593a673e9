"""Manifest line parsing and image checks (the rules every manifest line goes through)."""

from __future__ import annotations

import json

import pytest

from helpers import png_bytes
from loupe_common.images import ImageRejected, Rejection, inspect_image
from loupe_dataset.manifest import LineError, parse_line, split_lines


def test_classification_line():
    text = json.dumps({"source-ref": "s3://b/k.png", "anomaly-label": 1,
                       "anomaly-label-metadata": {"class-name": "anomaly"}})
    line = parse_line(3, text)
    assert (line.number, line.source_ref, line.label, line.mask_ref) == (3, "s3://b/k.png", 1, None)
    assert json.loads(line.text) == json.loads(text)


def test_unlabeled_line_and_mask_line():
    assert parse_line(1, '{"source-ref": "s3://b/k.png"}').label is None
    masked = parse_line(1, json.dumps({"source-ref": "s3://b/k.png", "anomaly-label": 1, "anomaly-mask-ref": "s3://b/m.png"}))
    assert masked.mask_ref == "s3://b/m.png"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"anomaly-label": 0}', "source-ref"),
        ('{"source-ref": "s3://b/k", "anomaly-label": 2}', "must be 0"),
        ('{"source-ref": "s3://b/k", "anomaly-label": true}', "must be 0"),
        ('{"source-ref": "s3://b/k", "anomaly-label": 0, "anomaly-label-metadata": {"class-name": "anomaly"}}', "class-name"),
        ('{"source-ref": "s3://b/k", "anomaly-label": 0, "anomaly-mask-ref": "s3://b/m"}', "only allowed"),
        ('{"source-ref": "s3://b/k", "x": "' + "y" * 8200 + '"}', "8192"),
    ],
)
def test_bad_lines(text, reason):
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

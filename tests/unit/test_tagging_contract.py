"""The tagging result shapes of v1.0 and v2 (threshold, limit, order, language, string confidences,
instances), and URL downloads without server-side request forgery, against a real local server."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loupe_common.fetch import FetchFailed, FetchRefused, fetch_url
from loupe_common.image_tagging import TaggingParams
from loupe_inference.tagging import shape


@dataclass
class Box:
    top_left_x: float
    top_left_y: float
    width: float
    height: float
    confidence: float


@dataclass
class Found:
    en: str
    zh: str
    type_v1: str
    category_en: str
    category_zh: str
    confidence: float
    instances: list[Box] = field(default_factory=list)


TAGS = [Found("tabby cat", "虎斑猫", "object", "Animal", "动物", 71.234),
        Found("person", "人", "object", "Human", "人物", 88.5, [Box(10.5, 20.25, 100.0, 200.0, 88.5)]),
        Found("lakeside", "湖边", "scene", "Scene", "场景", 12.0)]


def test_v1_shape():
    result = shape(TAGS, TaggingParams("v1", "en", 2, 10.0))["result"]["tags"]
    assert result == [
        {"confidence": 88.5, "tag": "person", "type": "object", "i18n_tag": {"zh": "人", "en": "person"}},
        {"confidence": 71.23, "tag": "tabby cat", "type": "object", "i18n_tag": {"zh": "虎斑猫", "en": "tabby cat"}},
    ]
    assert [t["tag"] for t in shape(TAGS, TaggingParams("v1", "zh", 30, 0.0))["result"]["tags"]] == ["人", "虎斑猫", "湖边"]


def test_a_name_is_shown_once():
    breeds = [Found("beagle", "犬", "object", "Animal", "动物", 30.0), Found("basset", "犬", "object", "Animal", "动物", 20.0)]
    assert [t["i18n_tag"]["en"] for t in shape(breeds, TaggingParams("v1", "zh", 30, 0.0))["result"]["tags"]] == ["beagle"]
    assert len(shape(breeds, TaggingParams("v1", "en", 30, 0.0))["result"]["tags"]) == 2


def test_v2_shape():
    result = shape(TAGS, TaggingParams("v2", "en", 50, 60.0))["result"]["tags"]
    assert [t["tag"] for t in result] == ["Person", "Tabby cat"]  # threshold 60 drops the lake
    person = result[0]
    assert person == {"confidence": "88.50", "tag": "Person", "type": "Human", "i18n_tag": {"zh": "人", "en": "Person"},
                      "i18n_type": {"zh": "人物", "en": "Human"},
                      "instances": [{"bounding_box": {"width": 100.0, "height": 200.0, "top_left_x": 10.5,
                                                      "top_left_y": 20.25}, "confidence": "88.50"}]}
    assert result[1]["instances"] == []
    chinese = shape(TAGS, TaggingParams("v2", "zh", 50, 60.0))["result"]["tags"]
    assert [(t["tag"], t["type"]) for t in chinese] == [("人", "人物"), ("虎斑猫", "动物")]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/image")
            self.end_headers()
            return
        body = b"x" * (5000 if self.path == "/big" else 100)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch(url: str, *, allow_private: bool = True, max_bytes: int = 1000) -> bytes:
    return asyncio.run(fetch_url(url, allow_private=allow_private, max_bytes=max_bytes, timeout=5))


def test_downloads_only_what_is_allowed(server):
    assert fetch(server + "/image") == b"x" * 100
    with pytest.raises(FetchRefused, match="non-public"):
        fetch(server + "/image", allow_private=False)
    with pytest.raises(FetchFailed, match="HTTP 302"):
        fetch(server + "/redirect")  # redirects are not followed (they could point anywhere)
    with pytest.raises(FetchFailed, match="larger than"):
        fetch(server + "/big")
    for url in ("ftp://example.com/a", "file:///etc/passwd", "http://user:pw@example.com/a", "https:///nohost"):
        with pytest.raises(FetchRefused):
            fetch(url)

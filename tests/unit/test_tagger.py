"""Image tagging on the real exported models (`make models`): scikit-image's bundled photos get the
tags a person would expect, boxes lie in the original image and cover the object, and the tag
catalogue gives every tag an English and a Chinese name, a v1 type and a bilingual v2 category."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from loupe_inference.tagger import Letterbox, Tagger, detector_input, nms
from loupe_models.catalogue import CLASSIFIER, DETECTOR, model_dir, tag_catalogue_source

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (the photos) is not installed")

MISSING = [spec.file for spec in (CLASSIFIER, DETECTOR) if not (model_dir() / spec.file).is_file()]
needs_models = pytest.mark.skipif(bool(MISSING), reason=f"run `make models` first: {', '.join(MISSING)} "
                                                        f"missing in {model_dir()}")


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load(model_dir(), threads=2)


@pytest.fixture(scope="module")
def catalogue() -> dict:
    return json.loads(tag_catalogue_source().read_text(encoding="utf-8"))


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage_data, name)())


def top(tags, n: int) -> list[str]:
    return [t.en for t in tags[:n]]


@needs_models
def test_a_cat_photo_is_tagged_cat(tagger):
    tags = tagger.tag(photo("chelsea"))
    assert "cat" in top(tags, 3), top(tags, 10)
    cat = next(t for t in tags if t.en == "cat")
    assert cat.category_en == "Animal" and cat.category_zh == "动物" and cat.type_v1 == "object"
    assert cat.confidence > 60
    # The breeds the classifier hesitates between add up to the general tag.
    breeds = [t for t in tags if t.en in ("tabby cat", "tiger cat", "Egyptian Mau")]
    assert len(breeds) == 3 and cat.confidence >= max(b.confidence for b in breeds)


@needs_models
def test_the_astronaut_is_a_person_with_a_box(tagger):
    image = photo("astronaut")
    tags = tagger.tag(image)
    person = next(t for t in tags if t.en == "person")
    assert person.category_en == "Human" and person.zh == "人"
    assert person in tags[:3] and person.confidence > 50, top(tags, 10)
    assert person.instances, "the detector found no person"
    box = max(person.instances, key=lambda i: i.confidence)
    width, height = image.size
    assert 0 <= box.top_left_x and box.top_left_x + box.width <= width
    assert 0 <= box.top_left_y and box.top_left_y + box.height <= height
    # Eileen Collins fills the left two thirds of the 512 x 512 photo, head to the bottom edge.
    assert box.top_left_x < 60 and box.top_left_y < 60
    assert 300 < box.top_left_x + box.width < 420 and box.top_left_y + box.height > 450
    assert box.confidence == pytest.approx(person.confidence)


@needs_models
def test_coffee(tagger):
    tags = tagger.tag(photo("coffee"))
    assert {"espresso", "beverage"} & set(top(tags, 3)), top(tags, 10)
    assert tags[0].category_en == "Food"


@needs_models
def test_results_are_sorted_and_well_formed(tagger, catalogue):
    image = photo("rocket")
    tags = tagger.tag(image)
    assert tags and [t.confidence for t in tags] == sorted((t.confidence for t in tags), reverse=True)
    assert len({t.en for t in tags}) == len(tags)
    categories = catalogue["categories"]
    for t in tags:
        assert 0 < t.confidence <= 100
        assert t.type_v1 in ("object", "scene", "concept")
        assert categories[t.category_en]["zh"] == t.category_zh
        for i in t.instances:
            assert 0 < i.confidence <= 100 and i.width > 0 and i.height > 0
            assert i.top_left_x + i.width <= image.size[0] + 1e-3 and i.top_left_y + i.height <= image.size[1] + 1e-3
    # The classifier's probabilities sum to 1 over the ImageNet tags (each class in one such tag;
    # no box raised any of them here).
    specific = [t for t in tags if t.en in {e["en"] for e in catalogue["tags"] if e["kind"] == "imagenet"}]
    assert not any(t.instances for t in specific)
    assert sum(t.confidence for t in specific) == pytest.approx(100, abs=0.5)


@needs_models
def test_boxes_follow_the_image_not_the_letterbox(tagger):
    """The same photo padded to a wide canvas: the person box moves by the padding, in pixels of
    the new image (letterbox scale and offset undone exactly)."""
    image = photo("astronaut")
    wide = Image.new("RGB", (1024, 512), (0, 0, 0))
    wide.paste(image, (256, 0))
    a = max(next(t for t in tagger.tag(image) if t.en == "person").instances, key=lambda i: i.confidence)
    b = max(next(t for t in tagger.tag(wide) if t.en == "person").instances, key=lambda i: i.confidence)
    assert b.top_left_x - 256 == pytest.approx(a.top_left_x, abs=25)
    assert b.width == pytest.approx(a.width, abs=40) and b.height == pytest.approx(a.height, abs=40)


@needs_models
def test_grey_and_tiny_images(tagger):
    grey = Image.fromarray(skimage_data.camera())  # mode L
    tags = tagger.tag(grey)
    assert "person" in top(tags, 3)
    assert tagger.tag(Image.new("RGB", (16, 16), (120, 130, 140)))  # no crash, some tags


def test_letterbox_maps_back_exactly():
    image = Image.new("RGB", (640, 320))
    _, box = detector_input(image)
    assert box == Letterbox(416 / 640, 208 / 320, 0, 104, 640, 320)
    corners = np.array([[0, 104, 416, 312]], np.float32)
    assert box.to_original(corners).tolist() == [[0, 0, 640, 320]]


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.5) == [1, 2]


def test_every_catalogue_entry_has_both_languages(catalogue):
    tags = catalogue["tags"]
    assert len(catalogue["imagenet"]) == 1000 and len(catalogue["coco"]) == 80
    assert len({t["en"].lower() for t in tags}) == len(tags)
    for t in tags:
        assert t["en"].strip() and t["zh"].strip(), t
        assert all("\u4e00" <= ch <= "\u9fff" or ch == "·" for ch in t["zh"]), t
        assert t["zh_source"] in ("cc-cedict", "cedict", "compound", "hypernym")
        assert t["type_v1"] in ("object", "scene", "concept")
        assert t["category"] in catalogue["categories"]
    for name, category in catalogue["categories"].items():
        assert category["en"] == name and category["zh"].strip()
    every_class = [index for t in tags for index in t.get("imagenet", [])]
    assert sorted(every_class) == list(range(1000))
    coverage = catalogue["coverage"]
    assert (coverage["zh_cc_cedict"] + coverage["zh_cedict"] + coverage["zh_compound"] + coverage["zh_hypernym"]
            == len(tags))
    assert "CC BY-SA 4.0" in catalogue["sources"]["cc-cedict"]["license"]


def test_common_tags_have_specific_chinese_names(catalogue):
    zh = {t["en"]: t["zh"] for t in catalogue["tags"]}
    assert zh["cat"] == "猫" and zh["dog"] in ("狗", "犬") and zh["banana"] == "香蕉"
    assert zh["person"] == "人" and zh["car"] == "汽车" and zh["Golden Retriever"] != zh["dog"]


def test_catalogue_mappings(catalogue):
    tags = catalogue["tags"]
    by_en = {t["en"]: t for t in tags}
    coco = [tags[i]["en"] for i in catalogue["coco"]]
    assert coco[0] == "person" and by_en["person"]["category"] == "Human"
    assert coco[15] == "cat" and by_en["cat"]["kind"] == "general"
    tabby = catalogue["imagenet"][281]
    assert tags[tabby[0]]["en"] == "tabby cat" and by_en["cat"] in [tags[i] for i in tabby[1:]]
    assert by_en["volcano"]["type_v1"] == "scene" and by_en["volcano"]["category"] == "Scene"
    assert by_en["espresso"]["category"] == "Food"
    assert by_en["sports car"]["category"] == "Vehicle"

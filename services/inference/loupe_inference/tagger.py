"""Image tagging on two pretrained models (onnxruntime + numpy + Pillow only): the EfficientNet-Lite0
ImageNet classifier gives the tags, the COCO-80 NanoDet-g detector gives object instances (boxes),
and the tag catalogue (loupe_models/data/tag-catalogue.json, generated from WordNet) gives every
tag its Chinese name, v1 type and v2 category.

- Classifier: centre crop of 87.5 % of the short side, 224 x 224, softmax over the 1000 classes.
  A tag's confidence is the summed probability of its classes: classes that share a name collapse
  into one tag, and a general tag (cat, dog, bird, car, ...) sums every class under it in WordNet
  (a tabby at 40 % and an Egyptian Mau at 38 % make "cat" 78 %+).
- Detector: aspect-preserving centred letterbox to 416 x 416 in NanoDet's BGR normalisation;
  per stride (8, 16, 32) the distance bins are decoded in numpy (GFL: softmax over 11 bins times
  the stride, from the cell centre), then per-class NMS (IoU 0.5) over cells scoring at least
  DETECTION_THRESHOLD. Boxes map back to the original image's pixels exactly (the letterbox's own
  scale and offset) and are clipped to it.
- Merge: a detected COCO class joins the tag of the same name (COCO "cat" -> the general "cat" tag
  the breeds sum into; "person" -> "person"), adding its boxes as instances; the tag's confidence
  is the larger of the classifier's and the best box's. Specific classes under that tag (the
  breeds) keep their own tags without instances.

`Tagger.tag` returns every tag with a confidence above zero, most confident first; limits,
thresholds and the response language are the caller's (loupe_inference.tagging).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from loupe_models.catalogue import (
    CLASSIFIER,
    CLASSIFIER_SIZE,
    DETECTOR,
    DETECTOR_MEAN_BGR,
    DETECTOR_REG_MAX,
    DETECTOR_SIZE,
    DETECTOR_STD_BGR,
    DETECTOR_STRIDES,
    MEAN,
    STD,
    TAG_CATALOGUE_FILE,
    ModelMissing,
    tag_catalogue_source,
)

CROP = 0.875  # the ImageNet evaluation crop (224 of 256)
DETECTION_THRESHOLD = 0.35  # NanoDet class score (sigmoid) a box needs
NMS_IOU = 0.5
MAX_DETECTIONS = 100


@dataclass(frozen=True)
class Instance:
    top_left_x: float
    top_left_y: float
    width: float
    height: float
    confidence: float  # 0..100


@dataclass(frozen=True)
class TagResult:
    en: str
    zh: str
    type_v1: str  # object | scene | concept
    category_en: str
    category_zh: str
    confidence: float  # 0..100
    instances: list[Instance] = field(default_factory=list)


@dataclass(frozen=True)
class Detection:
    coco_class: int
    score: float  # 0..1
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the original image's pixels


def _session(path: Path, threads: int) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelMissing(f"{path} is missing: run `make models`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # As runtime.py: idle pool threads would spin after each run, taking cores from the gateway.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def classifier_input(image: Image.Image) -> np.ndarray:
    """(1, 3, 224, 224): the centre CROP of the short side, bilinear, scaled as the Lite models."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    side = min(width, height) * CROP
    left, top = (width - side) / 2, (height - side) / 2
    crop = rgb.resize((CLASSIFIER_SIZE, CLASSIFIER_SIZE), Image.Resampling.BILINEAR,
                      box=(left, top, left + side, top + side))
    pixels = np.asarray(crop, dtype=np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    width: int
    height: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x1 y1 x2 y2 in the 416 x 416 input -> the original image's pixels, clipped."""
        out = np.empty_like(boxes)
        out[:, [0, 2]] = ((boxes[:, [0, 2]] - self.pad_x) / self.scale_x).clip(0, self.width)
        out[:, [1, 3]] = ((boxes[:, [1, 3]] - self.pad_y) / self.scale_y).clip(0, self.height)
        return out


def detector_input(image: Image.Image) -> tuple[np.ndarray, Letterbox]:
    """(1, 3, 416, 416) BGR (x - mean) / std on a centred letterbox with black padding."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    ratio = min(DETECTOR_SIZE / width, DETECTOR_SIZE / height)
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    pad_x, pad_y = (DETECTOR_SIZE - new_w) // 2, (DETECTOR_SIZE - new_h) // 2
    canvas = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.uint8)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = np.asarray(rgb.resize((new_w, new_h),
                                                                             Image.Resampling.BILINEAR))
    pixels = np.empty((1, 3, DETECTOR_SIZE, DETECTOR_SIZE), np.float32)
    for channel in range(3):  # B, G, R planes from the RGB canvas
        np.subtract(canvas[..., 2 - channel], DETECTOR_MEAN_BGR[channel], out=pixels[0, channel],
                    dtype=np.float32)
        pixels[0, channel] *= np.float32(1.0 / DETECTOR_STD_BGR[channel])
    letterbox = Letterbox(new_w / width, new_h / height, pad_x, pad_y, width, height)
    return pixels, letterbox


def decode(outputs: dict[str, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells scoring at least `threshold` for a class -> (boxes (N, 4) in input pixels, scores (N,),
    classes (N,)). GFL: each side's distance is the expectation of softmax(bins) over 0..reg_max,
    times the stride, from the cell centre ((col + 0.5) * stride, (row + 0.5) * stride)."""
    bins = np.arange(DETECTOR_REG_MAX + 1, dtype=np.float32)
    all_boxes, all_scores, all_classes = [], [], []
    for stride in DETECTOR_STRIDES:
        scores = outputs[f"cls_{stride}"][0]
        cells, classes = np.nonzero(scores >= threshold)
        if cells.size == 0:
            continue
        side = DETECTOR_SIZE // stride
        logits = outputs[f"reg_{stride}"][0][cells].reshape(-1, 4, DETECTOR_REG_MAX + 1)
        weights = np.exp(logits - logits.max(axis=2, keepdims=True))
        distances = (weights / weights.sum(axis=2, keepdims=True)) @ bins * stride  # (N, 4): l, t, r, b
        cx = (cells % side + 0.5) * stride
        cy = (cells // side + 0.5) * stride
        all_boxes.append(np.stack([cx - distances[:, 0], cy - distances[:, 1],
                                   cx + distances[:, 2], cy + distances[:, 3]], axis=1))
        all_scores.append(scores[cells, classes])
        all_classes.append(classes)
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_classes)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = (np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])).clip(0)
        h = (np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])).clip(0)
        overlap = w * h / np.maximum(areas[best] + areas[rest] - w * h, 1e-9)
        order = rest[overlap <= iou]
    return keep


class Tagger:
    def __init__(self, classifier: ort.InferenceSession, detector: ort.InferenceSession,
                 catalogue: dict) -> None:
        self.classifier = classifier
        self.detector = detector
        self.catalogue = catalogue
        self.tags = catalogue["tags"]
        categories = catalogue["categories"]
        self._category_zh = {name: entry["zh"] for name, entry in categories.items()}
        # ImageNet class -> the tags it adds its probability to (its own, then general ones).
        pairs = [(c, t) for c, tags in enumerate(catalogue["imagenet"]) for t in tags]
        self._class_of = np.array([c for c, _ in pairs], np.int64)
        self._tag_of = np.array([t for _, t in pairs], np.int64)
        self._coco_tag = list(catalogue["coco"])
        if len(catalogue["imagenet"]) != 1000 or len(self._coco_tag) != 80:
            raise ValueError("the tag catalogue must map 1000 ImageNet and 80 COCO classes")

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1) -> Tagger:
        """Both models from `make models`' folder; the catalogue from the loupe_models package
        (the committed file), or the copy `make models` puts beside the models where the package
        was installed without its data (a wheel in a service image)."""
        model_dir = Path(model_dir)
        catalogue_path = tag_catalogue_source()
        if not catalogue_path.is_file():
            catalogue_path = model_dir / TAG_CATALOGUE_FILE
        catalogue = json.loads(catalogue_path.read_text(encoding="utf-8"))
        return cls(_session(model_dir / CLASSIFIER.file, threads),
                   _session(model_dir / DETECTOR.file, threads), catalogue)

    def classify(self, image: Image.Image) -> np.ndarray:
        """Softmax probabilities of the 1000 ImageNet classes."""
        (logits,) = self.classifier.run(None, {"image": classifier_input(image)})
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        return p / p.sum()

    def detect(self, image: Image.Image, threshold: float = DETECTION_THRESHOLD) -> list[Detection]:
        """COCO objects, per-class NMS, boxes in the original image's pixels, best first."""
        pixels, letterbox = detector_input(image)
        names = [o.name for o in self.detector.get_outputs()]
        # run(None) returns every output, in get_outputs()' order.
        outputs = dict(zip(names, self.detector.run(None, {"image": pixels}), strict=True))
        boxes, scores, classes = decode(outputs, threshold)
        if not len(scores):
            return []
        boxes = letterbox.to_original(boxes)
        kept: list[int] = []
        for coco_class in np.unique(classes):
            members = np.nonzero(classes == coco_class)[0]
            kept.extend(int(members[i]) for i in nms(boxes[members], scores[members], NMS_IOU))
        kept.sort(key=lambda i: -float(scores[i]))
        return [Detection(int(classes[i]), float(scores[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[arg-type]
                for i in kept[:MAX_DETECTIONS] if boxes[i, 2] > boxes[i, 0] and boxes[i, 3] > boxes[i, 1]]

    def tag(self, image: Image.Image) -> list[TagResult]:
        probabilities = self.classify(image)
        confidence = np.zeros(len(self.tags), np.float64)
        np.add.at(confidence, self._tag_of, probabilities[self._class_of])
        confidence = np.minimum(confidence * 100.0, 100.0)
        instances: dict[int, list[Instance]] = {}
        for detection in self.detect(image):
            tag = self._coco_tag[detection.coco_class]
            x1, y1, x2, y2 = detection.box
            score = detection.score * 100.0
            instances.setdefault(tag, []).append(Instance(x1, y1, x2 - x1, y2 - y1, score))
            confidence[tag] = max(confidence[tag], score)
        order = np.argsort(-confidence, kind="stable")  # ties in catalogue order
        results = []
        for t in order[: int((confidence > 0).sum())]:
            entry = self.tags[t]
            results.append(TagResult(entry["en"], entry["zh"], entry["type_v1"], entry["category"],
                                     self._category_zh[entry["category"]], float(confidence[t]),
                                     instances.get(int(t), [])))
        return results

"""The anomaly benchmark generator (tests/benchmarks/anomaly_data.py): determinism, masks, manifests and
defect sizes. Small images (96 px) and small counts keep this fast."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("skimage")
Image = pytest.importorskip("PIL.Image")
ndi = pytest.importorskip("scipy.ndimage")

SIZE = 96
COUNTS = {"n_train": 3, "n_test_normal": 2, "n_test_anomalous": 4}


def _load_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "anomaly_data.py"
    spec = importlib.util.spec_from_file_location("loupe_bench_anomaly_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


ad = _load_module()


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _uri_path(uri: str) -> Path:
    parts = urlparse(uri)
    assert parts.scheme == "file" and parts.netloc == ""
    return Path(unquote(parts.path))


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("bench")
    summary = ad.generate(root, size=SIZE, seed=0, **COUNTS)
    return root, summary


def test_categories_documented_and_bundled():
    assert len(ad.CATEGORIES) >= 5
    assert {"brick", "grass", "gravel"} <= set(ad.CATEGORIES)
    assert any(ad.CATEGORY_SPECS[c].aligned for c in ad.CATEGORIES)
    for name in ad.CATEGORIES:
        spec = ad.CATEGORY_SPECS[name]
        assert f"skimage.data.{spec.source}()" in ad.__doc__ or spec.source in spec.description
        img = ad._source(spec.source)  # loads from the wheel; no network involved
        assert img.ndim == 3 and img.shape[0] >= 150 and img.dtype == np.float32


def test_layout_and_summary(bench):
    root, summary = bench
    assert set(summary["categories"]) == set(ad.CATEGORIES)
    for name, info in summary["categories"].items():
        cdir = root / name
        assert info["train"] == COUNTS["n_train"]
        assert len(list((cdir / "train" / "normal").glob("*.png"))) == COUNTS["n_train"]
        assert len(list((cdir / "test" / "normal").glob("*.png"))) == COUNTS["n_test_normal"]
        anomalies = sorted((cdir / "test" / "anomaly").glob("*.png"))
        masks = sorted((cdir / "test" / "mask").glob("*.png"))
        assert len(anomalies) == COUNTS["n_test_anomalous"]
        assert [p.name for p in anomalies] == [p.name for p in masks]
        assert sum(info["defects"].values()) >= COUNTS["n_test_anomalous"]
        assert Path(info["train_manifest"]).is_file() and Path(info["test_manifest"]).is_file()
        with Image.open(anomalies[0]) as im:
            assert im.mode == "RGB" and im.size == (SIZE, SIZE)


def test_same_seed_same_bytes(bench, tmp_path):
    root, _ = bench
    first = _tree_digest(root)
    ad.generate(root, size=SIZE, seed=0, **COUNTS)  # rerun into the same place
    assert _tree_digest(root) == first
    other = tmp_path / "again"
    ad.generate(other, size=SIZE, seed=0, **COUNTS)
    again = _tree_digest(other)
    pngs = {k: v for k, v in first.items() if k.endswith(".png")}
    assert pngs == {k: v for k, v in again.items() if k.endswith(".png")}
    # manifests differ only by the root they point into
    for name in ad.CATEGORIES:
        for manifest in ("train.manifest", "test.manifest"):
            a = (root / name / manifest).read_text().replace(root.resolve().as_uri(), "ROOT")
            b = (other / name / manifest).read_text().replace(other.resolve().as_uri(), "ROOT")
            assert a == b


def test_different_seed_different_images(bench, tmp_path):
    root, _ = bench
    other = tmp_path / "seed1"
    ad.generate(other, categories=("brick", "cup"), size=SIZE, seed=1, **COUNTS)
    for name in ("brick", "cup"):
        for sub in ("train/normal", "test/normal", "test/anomaly"):
            for p in sorted((other / name / sub).glob("*.png")):
                assert p.read_bytes() != (root / name / sub / p.name).read_bytes(), p


def test_test_views_are_not_train_views(bench):
    root, _ = bench
    for name in ad.CATEGORIES:
        train = {p.read_bytes() for p in (root / name / "train" / "normal").glob("*.png")}
        for sub in ("test/normal", "test/anomaly"):
            for p in (root / name / sub).glob("*.png"):
                assert p.read_bytes() not in train
        train_params = [ad.view_params(name, "train", i, 0) for i in range(COUNTS["n_train"])]
        for split in ("test_normal", "test_anomaly"):
            for i in range(5):
                p = ad.view_params(name, split, i, 0)
                assert not any(ad._too_close(p, q) for q in train_params)


def test_views_sample_inside_the_source():
    """No padding, mirroring or constant fill can reach a view's border."""
    for name in ad.CATEGORIES:
        spec = ad.CATEGORY_SPECS[name]
        h, w = ad._source(spec.source).shape[:2]
        for split in ("train", "test_normal", "test_anomaly"):
            for i in range(10):
                coords = ad._view_coords(spec, ad.view_params(name, split, i, 0), SIZE)
                assert coords[0].min() >= 1 and coords[0].max() <= h - 2, (name, split, i)
                assert coords[1].min() >= 1 and coords[1].max() <= w - 2, (name, split, i)


def test_manifests(bench):
    root, _ = bench
    for name in ad.CATEGORIES:
        for manifest, expected in (
            ("train.manifest", {0: COUNTS["n_train"]}),
            ("test.manifest", {0: COUNTS["n_test_normal"], 1: COUNTS["n_test_anomalous"]}),
        ):
            lines = (root / name / manifest).read_text(encoding="utf-8").splitlines()
            seen: dict[int, int] = {}
            refs = set()
            for line in lines:
                doc = json.loads(line)
                label = doc["anomaly-label"]
                assert label in (0, 1) and not isinstance(label, bool)
                seen[label] = seen.get(label, 0) + 1
                meta = doc["anomaly-label-metadata"]
                assert meta == {
                    "class-name": "anomaly" if label else "normal",
                    "human-annotated": "yes",
                    "type": "groundtruth/image-classification",
                    "job-name": "loupe-bench",
                    "creation-date": "2026-11-21T00:00:00.000",
                }
                image = _uri_path(doc["source-ref"])
                assert image.is_absolute() and image.is_file()
                assert image.parent.name == ("anomaly" if label else "normal")
                assert image.parts[-4] == name
                refs.add(doc["source-ref"])
                if label == 1:
                    mask_path = _uri_path(doc["anomaly-mask-ref"])
                    assert mask_path.is_file() and mask_path.name == image.name
                    assert mask_path.parent.name == "mask"
                    with Image.open(mask_path) as m, Image.open(image) as im:
                        assert m.format == "PNG" and m.mode == "L" and m.size == im.size
                else:
                    assert "anomaly-mask-ref" not in doc
            assert seen == expected
            assert len(refs) == len(lines)


def test_manifests_accepted_by_loupe_parser(bench):
    manifest = pytest.importorskip("loupe_dataset.manifest")
    root, _ = bench
    for name in ad.CATEGORIES:
        for file in ("train.manifest", "test.manifest"):
            for number, text in manifest.split_lines((root / name / file).read_bytes()):
                line = manifest.parse_line(number, text)
                assert line.label in (0, 1)


def test_masks_binary_nonempty_and_cover_changes(bench):
    root, _ = bench
    for name in ad.CATEGORIES:
        for i in range(COUNTS["n_test_anomalous"]):
            mask = np.asarray(Image.open(root / name / "test" / "mask" / f"{i:03d}.png"))
            assert mask.dtype == np.uint8 and mask.shape == (SIZE, SIZE)
            assert set(np.unique(mask).tolist()) == {0, 255}
            area = (mask > 0).mean()
            assert 0.001 <= area <= 0.12, (name, i, area)


@pytest.mark.parametrize("category", ad.CATEGORIES)
def test_changes_lie_inside_the_dilated_mask(category):
    for i in range(8):
        s = ad.make_sample(category, "test_anomaly", i, size=SIZE, seed=2)
        written = np.asarray(Image.open(io.BytesIO(_png(s.image))))
        assert np.array_equal(written, s.image)
        assert s.mask is not None and s.defects
        m = s.mask > 0
        diff = np.abs(s.image.astype(int) - s.clean.astype(int)).max(axis=2)
        assert diff[m].max() > 20, (category, i, s.defects)  # the defect is visible
        # every change that matters (> ~0.03 in some channel) is in the mask or next to it
        assert not (diff >= 9)[~ndi.binary_dilation(m, iterations=3)].any(), (category, i, s.defects)
        # faint fringes (soft stain edges, shadows) stay close to the defect
        assert not (diff > 0)[~ndi.binary_dilation(m, iterations=SIZE // 10)].any(), (category, i, s.defects)
        # the clean view is the same view: identical where nothing was painted
        assert (diff == 0).mean() > 0.8


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ad.DEFECT_KINDS)
def test_each_defect_kind_area_within_bounds(kind):
    lo, hi = ad.DEFECT_AREA_BOUNDS[kind]
    assert 0 < lo < hi <= 0.06
    for n, category in enumerate(ad.CATEGORIES):
        params = ad.view_params(category, "test_anomaly", n, 0)
        img, roi = ad.clean_view(category, params, SIZE)
        for j in range(3):
            rng = np.random.default_rng([n, j, ad.DEFECT_KINDS.index(kind)])
            out, mask = ad.apply_defect(img, kind, rng, category, roi=roi)
            assert out.shape == img.shape and out.dtype == np.float32
            assert mask.dtype == bool and mask.any()
            assert lo <= mask.mean() <= hi, (kind, category, j, mask.mean())
            changed = np.abs(out - img).max(axis=2) > ad.SIGNIFICANT_CHANGE
            assert not changed[~ndi.binary_dilation(mask, iterations=3)].any(), (kind, category, j)
            assert changed[mask].mean() > 0.3, (kind, category, j)  # most of the mask visibly changed
            if roi is not None:  # aligned objects: defects sit on the object
                assert (mask & roi).sum() >= 0.5 * mask.sum(), (kind, category, j)


def test_defect_kinds_are_balanced():
    kinds = [ad._kind_for("brick", i, 0) for i in range(len(ad.DEFECT_KINDS) * 3)]
    assert sorted(set(kinds)) == sorted(ad.DEFECT_KINDS)
    assert all(kinds.count(k) == 3 for k in ad.DEFECT_KINDS)


def test_script_writes_preview(tmp_path, capsys):
    out = tmp_path / "out"
    args = "--size 64 --train 1 --test-normal 1 --test-anomalous 4 --seed 5 --categories gravel,coins"
    rc = ad.main([str(out), *args.split()])
    assert rc == 0
    text = capsys.readouterr().out
    assert "gravel" in text and "coins" in text and "preview" in text
    with Image.open(out / "preview.png") as im:
        assert im.mode == "RGB" and im.width > 4 * 64
    assert (out / "coins" / "test.manifest").is_file()

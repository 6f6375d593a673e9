"""Training benchmark through the real service path: generated categories (real scikit-image
textures and objects with synthetic defects and masks) -> datasets imported from manifests by the
dataset service -> CreateModel on the training service -> evaluation read back.

Prints per category and overall: image AUROC, pixel AUROC, F1/precision/recall at the model's
own threshold, training wall time, images/s, and the training process's peak RSS; the image AUROC
of each defect kind (its defective test images against all normal ones, from the model's evaluation
manifest), which says which defects a category's figure is lost on; then a scale run with 200
training images. Asserts nothing: the figures are read against the targets.

Run: .venv/bin/python tests/benchmarks/bench_training.py [--train 30] [--scale 200] [--categories brick,grass]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from anomaly_data import CATEGORIES, generate  # noqa: E402
from helpers import make_client, signed_request  # noqa: E402
from loupe_local.stack import Stack  # noqa: E402
from loupe_training.patchcore.metrics import auroc  # noqa: E402

OUTPUT = {"S3Location": {"Bucket": "bench-output"}}


def wait(poll, done, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = poll()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(str(value))
        time.sleep(interval)


def train_category(stack: Stack, data: Path, category: str, project: str) -> dict:
    lookout = make_client("lookoutvision", stack.endpoint_url)
    bucket_dir = stack.data_dir / "s3" / "bench" / project
    bucket_dir.mkdir(parents=True, exist_ok=True)
    lookout.create_project(ProjectName=project)
    for kind in ("train", "test"):
        shutil.copy(data / category / f"{kind}.manifest", bucket_dir / f"{kind}.manifest")
        lookout.create_dataset(ProjectName=project, DatasetType=kind, DatasetSource={
            "GroundTruthManifest": {"S3Object": {"Bucket": "bench", "Key": f"{project}/{kind}.manifest"}}})
        desc = wait(lambda k=kind: lookout.describe_dataset(ProjectName=project, DatasetType=k)["DatasetDescription"],
                    lambda d: not d["Status"].endswith("IN_PROGRESS"), 600)
        if desc["Status"] != "CREATE_COMPLETE":
            raise RuntimeError(f"{project} {kind}: {desc['Status']} {desc.get('StatusMessage')}")
    started = time.monotonic()
    lookout.create_model(ProjectName=project, OutputConfig=OUTPUT)
    model = wait(lambda: lookout.describe_model(ProjectName=project, ModelVersion="1")["ModelDescription"],
                 lambda d: d["Status"] != "TRAINING", 1800)
    wall = time.monotonic() - started
    if model["Status"] != "TRAINED":
        raise RuntimeError(f"{project}: {model['Status']} {model.get('StatusMessage')}")
    base = f"/loupe/v1/projects/{project}/models/1"
    data_out = signed_request(stack.endpoint_url, "GET", f"{base}/evaluation").json()["data"]
    manifest = signed_request(stack.endpoint_url, "GET", f"{base}/artifacts/evaluation-manifest.jsonl").text
    kinds = kind_auroc(manifest, data / category / "defects.json")
    return {"category": category, "wall": wall, "kinds": kinds, **data_out}


def kind_auroc(manifest: str, defects_file: Path) -> dict[str, tuple[float, int]]:
    """Per defect kind (an image's first defect): (image AUROC of its defective test images
    against every normal test image, how many images)."""
    defects = json.loads(defects_file.read_text())
    normal, by_kind = [], {}
    for line in manifest.splitlines():
        row = json.loads(line)
        if row["anomaly-label"] == 0:
            normal.append(row["score"])
        else:
            kind = defects[Path(row["source-ref"]).name][0]["kind"]
            by_kind.setdefault(kind, []).append(row["score"])
    return {kind: (auroc([*normal, *scores], [0] * len(normal) + [1] * len(scores)), len(scores))
            for kind, scores in sorted(by_kind.items())}


def row(r: dict) -> str:
    t = r["Timings"]
    return (f"{r['category']:8s} {r['ImageAUROC']:6.3f} {r['PixelAUROC']:6.3f} {r['F1Score']:5.2f} {r['Precision']:5.2f} "
            f"{r['Recall']:5.2f} {r['TrainingImages']['normal']:5d} {r['wall']:7.1f} {t['fit_seconds']:6.1f} "
            f"{t['training_images_per_second']:7.1f} {t['peak_rss_mb']:8.0f}")


HEADER = ("category  imgAUC pixAUC    F1  prec   rec train  wall s  fit s  img/s  peakRSS MB\n"
          + "-" * 86)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=30)
    parser.add_argument("--test-normal", type=int, default=20)
    parser.add_argument("--test-anomalous", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--scale", type=int, default=200, help="training images of the scale run (0: skip)")
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    categories = args.categories.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.monotonic()
        generate(tmp_path / "data", categories=categories, size=args.size, n_train=args.train,
                 n_test_normal=args.test_normal, n_test_anomalous=args.test_anomalous, seed=args.seed)
        print(f"generated {len(categories)} categories in {time.monotonic() - started:.1f} s "
              f"({args.train} train, {args.test_normal}+{args.test_anomalous} test, {args.size} px)")
        results = []
        with Stack.on_free_ports(tmp_path / "stack", services=("dataset", "training")) as stack:
            print(HEADER)
            for category in categories:
                results.append(train_category(stack, tmp_path / "data", category, f"bench-{category}"))
                print(row(results[-1]), flush=True)
        image = [r["ImageAUROC"] for r in results]
        pixel = [r["PixelAUROC"] for r in results]
        print("-" * 86)
        print(f"mean     {statistics.fmean(image):6.3f} {statistics.fmean(pixel):6.3f} "
              f"{statistics.fmean(r['F1Score'] for r in results):5.2f}   (lowest image AUROC {min(image):.3f})")
        print("\nimage AUROC per defect kind (defective images of the kind against all normal test images; n)")
        for r in results:
            print(f"{r['category']:8s} " + "  ".join(f"{k} {a:.3f} ({n})" for k, (a, n) in r["kinds"].items()))

        if args.scale:
            generate(tmp_path / "scale", categories=[categories[0]], size=args.size, n_train=args.scale,
                     n_test_normal=args.test_normal, n_test_anomalous=args.test_anomalous, seed=args.seed + 1)
            with Stack.on_free_ports(tmp_path / "stack-scale", services=("dataset", "training")) as stack:
                r = train_category(stack, tmp_path / "scale", categories[0], "bench-scale")
            print(f"\nscale run: {args.scale} training images ({categories[0]}, fresh training process)")
            print(HEADER)
            print(row(r))


if __name__ == "__main__":
    main()

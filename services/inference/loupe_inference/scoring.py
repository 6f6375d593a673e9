"""One image through one model: checked and decoded with limits (no decompression bombs), the
declared content type compared with the bytes, then scored. Runs in a thread."""

from __future__ import annotations

import base64

from loupe_common.images import CONTENT_TYPES, ImageInfo, ImageRejected, Rejection, decode_image

from .runtime import Detection, ModelRuntime, heatmap_png

# A large JPEG is decoded reduced to no fewer pixels than this: the model sees a few hundred pixels a
# side (so still 4x its input), and the mask comes from the anomaly map, not from the pixels.
DECODE_PIXELS = 1024 * 1024


def detect(runtime: ModelRuntime, data: bytes, *, content_type: str | None, threshold: float | None,
           with_mask: bool, with_heatmap: bool = False) -> tuple[dict, Detection, ImageInfo]:
    """{"DetectAnomalyResult": ..., "Score": ..., "Threshold": ...} (the last two for Loupe's own
    routes; `with_heatmap`: also "Heatmap", an RGBA PNG to lay over the image), with the detection
    and the image's facts for human review."""
    info, image = decode_image(data, digest=False, reduce_to=DECODE_PIXELS)
    try:
        if content_type is not None and content_type != CONTENT_TYPES[info.format]:
            raise ImageRejected(Rejection.UNSUPPORTED_TYPE,
                                f"Content-Type is {content_type} but the bytes are a {info.format} image")
        size = (info.width, info.height)
        detection = runtime.detect(image, threshold=threshold, with_mask=with_mask, size=size)
        result = {"DetectAnomalyResult": detection.lookout_result(), "Score": round(detection.score, 6),
                  "Threshold": round(detection.threshold, 6)}
        if detection.kind == "classification" and detection.mask_png is not None:
            # Lookout's classification models had no mask; Loupe's native route offers one beside.
            result["AnomalyMask"] = base64.b64encode(detection.mask_png).decode()
        if with_heatmap and detection.anomaly_map is not None:
            heatmap = heatmap_png(detection.anomaly_map, detection.pixel_threshold, size)
            result["Heatmap"] = base64.b64encode(heatmap).decode()
        return result, detection, info
    finally:
        image.close()

"""The evaluation report people look at: one self-contained HTML page per model version with the
score histogram (normal vs anomalous, threshold line), the precision-recall curve, and the worst
false positives / false negatives with their anomaly heatmaps."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class Case:
    source_ref: str
    label: int
    score: float
    pixels: np.ndarray  # (3, S, S) 0..255
    anomaly_map: np.ndarray  # (S, S)


def heatmap_png(case: Case, vmin: float, vmax: float, width: int = 224) -> str:
    """The image with its anomaly map overlaid (red = anomalous), as a data: URL."""
    rgb = case.pixels.transpose(1, 2, 0).clip(0, 255).astype(np.uint8)
    heat = np.clip((case.anomaly_map - vmin) / max(vmax - vmin, 1e-6), 0, 1)
    overlay = np.zeros_like(rgb, dtype=np.float32)
    overlay[..., 0] = 255 * heat
    overlay[..., 1] = 64 * (1 - heat)
    alpha = (0.15 + 0.55 * heat)[..., None]
    mixed = (rgb * (1 - alpha) + overlay * alpha).astype(np.uint8)
    image = Image.fromarray(np.concatenate([rgb, mixed], axis=1)).resize((2 * width, width))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _histogram_svg(normal: np.ndarray, anomalous: np.ndarray, threshold: float) -> str:
    values = np.concatenate([normal, anomalous, [threshold]])
    lo, hi = float(values.min()), float(values.max())
    hi = hi if hi > lo else lo + 1
    bins = np.linspace(lo, hi, 31)
    hn, _ = np.histogram(normal, bins)
    ha, _ = np.histogram(anomalous, bins)
    top = max(int(hn.max(initial=0)), int(ha.max(initial=0)), 1)
    w, h, pad = 560, 220, 30
    bar = (w - 2 * pad) / 30
    parts = [f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="score histogram">']
    for i in range(30):
        x = pad + i * bar
        for counts, colour, dx in ((hn, "#3b82f6", 0), (ha, "#ef4444", bar / 2)):
            bh = (h - 2 * pad) * counts[i] / top
            parts.append(f'<rect x="{x + dx:.1f}" y="{h - pad - bh:.1f}" width="{bar / 2 - 1:.1f}" '
                         f'height="{bh:.1f}" fill="{colour}"/>')
    tx = pad + (w - 2 * pad) * (threshold - lo) / (hi - lo)
    parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{pad / 2}" y2="{h - pad}" stroke="#111" '
                 'stroke-dasharray="4"/>')
    parts.append(f'<text x="{tx + 4:.1f}" y="{pad}" font-size="12">threshold {threshold:.3f}</text>')
    parts.append(f'<text x="{pad}" y="{h - 8}" font-size="12">{lo:.2f}</text>'
                 f'<text x="{w - pad - 40}" y="{h - 8}" font-size="12">{hi:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pr_svg(curve: list[tuple[float, float, float]]) -> str:
    w, h, pad = 300, 260, 34
    points = " ".join(f"{pad + (w - 2 * pad) * r:.1f},{h - pad - (h - 2 * pad) * p:.1f}"
                      for _, p, r in sorted(curve, key=lambda c: c[2]))
    return (f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            'aria-label="precision-recall curve">'
            f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" '
            'stroke="#999"/>'
            f'<polyline points="{points}" fill="none" stroke="#7c3aed" stroke-width="2"/>'
            f'<text x="{w / 2 - 20}" y="{h - 8}" font-size="12">recall</text>'
            f'<text x="4" y="{pad - 8}" font-size="12">precision</text></svg>')


def render(*, title: str, metrics: dict, normal_scores: np.ndarray, anomaly_scores: np.ndarray,
           threshold: float, curve: list, false_positives: list[Case], false_negatives: list[Case],
           vmin: float, vmax: float) -> str:
    def rows(cases: list[Case], empty: str) -> str:
        if not cases:
            return f"<p>{empty}</p>"
        return "".join(
            f'<figure><img src="{heatmap_png(c, vmin, vmax)}" alt="{html.escape(c.source_ref)}">'
            f"<figcaption>score {c.score:.3f} · {html.escape(c.source_ref)}</figcaption></figure>"
            for c in cases
        )

    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in metrics.items())
    legend = (f'<span style="color:#3b82f6">■</span> normal ({len(normal_scores)}) '
              f'<span style="color:#ef4444">■</span> anomalous ({len(anomaly_scores)})')
    pr_curve = _pr_svg(curve) if len(anomaly_scores) else "<p>No anomalous test images.</p>"
    worst_fp = rows(false_positives, "None: no normal image was flagged.")
    worst_fn = rows(false_negatives, "None: every anomalous image was flagged.")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#111}}table{{border-collapse:collapse}}
th,td{{text-align:left;padding:2px 12px 2px 0}}figure{{display:inline-block;margin:6px}}
figcaption{{font-size:12px;max-width:448px;overflow-wrap:anywhere}}.charts{{display:flex;gap:24px;flex-wrap:wrap}}</style>
</head><body><h1>{html.escape(title)}</h1><table>{table}</table>
<div class="charts"><div><h2>Scores</h2>{_histogram_svg(normal_scores, anomaly_scores, threshold)}
<p>{legend}</p></div>
<div><h2>Precision–recall</h2>{pr_curve}</div></div>
<h2>Worst false positives (normal images scored highest)</h2>{worst_fp}
<h2>Worst false negatives (anomalous images scored lowest)</h2>{worst_fn}
</body></html>"""

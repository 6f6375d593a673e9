// A model version in the console: live status while it trains, the evaluation (metrics, anomaly
// classes, and the training report with its histogram, precision-recall curve and worst cases),
// hosting with the units serving and how busy they are, and "try it": an image against the hosted
// model, with the heatmap, the mask, the classes and a threshold to move.

import { detectImage, lookout, models } from "./api.js";
import { TRANSITIONAL, attempt, h, read, render, show, statusBadge } from "./ui.js";

const fmt = (v, digits = 3) => (typeof v === "number" ? v.toFixed(digits) : "—");
let timer = null;

export async function modelView(project, version) {
  clearTimeout(timer);
  const here = location.hash;
  document.getElementById("crumbs").replaceChildren(
    h("a", { href: "#/projects" }, "Projects"), " / ",
    h("a", { href: `#/projects/${encodeURIComponent(project)}` }, project), ` / model version ${version}`);
  const status = h("p", { id: "model-status" }, "Loading…");
  const evaluation = h("div", { id: "evaluation" });
  const hosting = h("div", { id: "hosting" });
  const tryIt = h("div", { id: "try-it" });
  render(`${project}: model version ${version}`, status, h("h2", {}, "Hosting"), hosting,
    h("h2", {}, "Try it"), tryIt, h("h2", {}, "Evaluation"), evaluation);

  let shown = "";
  let evaluated = false;
  async function refresh() {
    const d = (await read(() => lookout.describeModel(project, version)))?.ModelDescription;
    if (!d || location.hash !== here) return;
    const percent = d.Status === "TRAINING" && /\((\d+)%\)$/.exec(d.StatusMessage ?? "");
    status.replaceChildren(statusBadge(d.Status), " ", h("span", { id: "model-message" }, d.StatusMessage ?? ""),
      percent ? h("progress", { id: "training-progress", max: "100", value: percent[1], "aria-label": "Training progress" }) : "");
    if (d.Status !== shown) {
      shown = d.Status;
      hostingPanel(project, version, d, hosting, refresh);
      tryPanel(project, version, d, tryIt);
      if (!evaluated && !["TRAINING", "TRAINING_FAILED", "DELETING"].includes(d.Status)) {
        evaluated = true;
        await evaluationPanel(project, version, evaluation);
      }
    }
    if (d.Status === "HOSTED") await unitsPanel(project, version, hosting);
    timer = setTimeout(refresh, TRANSITIONAL.test(d.Status) ? 1000 : d.Status === "HOSTED" ? 2000 : 10000);
  }
  await refresh();
}

async function evaluationPanel(project, version, box) {
  const e = await read(() => models.evaluation(project, version));
  if (!e) { box.replaceChildren(h("p", { class: "empty" }, "The evaluation could not be read.")); return; }
  const rows = [
    ["F1 at the threshold", fmt(e.F1Score)], ["Precision", fmt(e.Precision)], ["Recall", fmt(e.Recall)],
    ["Image AUROC", fmt(e.ImageAUROC)], ["Pixel AUROC", fmt(e.PixelAUROC)], ["Mask IoU", fmt(e.MaskIoU)],
    ["Threshold (score units)", `${fmt(e.Threshold, 4)} (${e.ThresholdMethod ?? ""})`],
    ["Model kind", e.ModelKind ?? "—"],
    ["Test images", e.TestImages ? `${e.TestImages.normal} normal, ${e.TestImages.anomaly} anomalous` : "—"],
  ];
  if (typeof e.ClassAccuracy === "number") rows.push(["Class accuracy (flagged defects)", fmt(e.ClassAccuracy)]);
  const classes = (e.AnomalyClasses ?? []).map((c) => h("tr", {},
    h("td", {}, h("span", { class: "swatch", style: { background: c.Color } }), ` ${c.Name}`), h("td", {}, fmt(c.IoU))));
  box.replaceChildren(
    h("table", { id: "metrics", class: "narrow" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))))),
    classes.length ? h("table", { class: "narrow" }, h("thead", {}, h("tr", {}, h("th", {}, "Anomaly class"), h("th", {}, "IoU"))), h("tbody", {}, classes)) : "",
    e.artifacts?.["report.html"]
      ? h("iframe", { id: "report", title: "Training report", src: models.reportUrl(project, version), sandbox: "allow-same-origin" })
      : h("p", { class: "muted" }, "This version has no report."));
}

function hostingPanel(project, version, d, box, refresh) {
  const min = h("input", { id: "min-units", type: "number", min: "1", max: "100", value: String(d.MinInferenceUnits ?? 1) });
  const max = h("input", { id: "max-units", type: "number", min: "1", max: "100", value: String(d.MaxInferenceUnits ?? d.MinInferenceUnits ?? 1) });
  const act = (label, work, done, cls = "") => h("button", { type: "button", class: cls, onclick: async () => {
    if (await attempt(work, done)) { clearTimeout(timer); await refresh(); }
  } }, label);
  const controls = [];
  if (d.Status === "TRAINED" || d.Status === "HOSTING_FAILED") {
    controls.push(h("label", { for: "min-units" }, "Min units", min), h("label", { for: "max-units" }, "Max units", max),
      act("Start hosting", () => lookout.startModel(project, version, Number(min.value), Number(max.value)), `Version ${version} is starting.`));
  }
  if (d.Status === "HOSTED" || d.Status === "STARTING_HOSTING") {
    controls.push(act("Stop hosting", () => lookout.stopModel(project, version), `Version ${version} is stopping.`, "secondary"));
  }
  box.replaceChildren(h("div", { class: "inline" }, controls.length ? controls : h("span", { class: "muted" }, "Hosting starts once the version is trained.")),
    h("div", { id: "units" }));
}

async function unitsPanel(project, version, box) {
  const units = await read(() => models.hosting(project, version));
  const panel = box.querySelector("#units");
  if (!units || !panel) return;
  const busy = Math.round(100 * (units.BusyShare ?? 0));
  panel.replaceChildren(
    h("p", {}, h("strong", { id: "units-serving" }, `${units.ServingUnits} of ${units.WantedUnits} units serving`),
      ` (between ${units.MinInferenceUnits} and ${units.MaxInferenceUnits}) · busy `, h("span", { id: "busy-share" }, `${busy}%`)),
    h("div", { class: "meter", role: "meter", "aria-label": "Busy share of the units", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(busy) },
      h("span", { style: { width: `${busy}%` } })),
    h("ul", { class: "units" }, units.Units.map((u) => h("li", {}, `${u.Worker}: ${Math.round(100 * u.Busy)}% busy`))));
}

function tryPanel(project, version, d, box) {
  if (d.Status !== "HOSTED") {
    box.replaceChildren(h("p", { class: "muted" }, "Host this version to try images on it."));
    return;
  }
  const result = h("div", { id: "verdict-box" });
  const input = h("input", { id: "try-file", type: "file", accept: "image/png,image/jpeg" });
  let file = null;
  let threshold;
  const slider = h("input", { id: "threshold", type: "range", min: "0", max: "1", step: "0.0001", disabled: true, "aria-label": "Threshold (model score units)" });
  const sliderValue = h("output", { for: "threshold", id: "threshold-value" }, "");
  async function run() {
    if (!file) return;
    const answer = await attempt(() => detectImage(project, version, file, threshold));
    if (!answer) return;
    if (threshold === undefined) {  // the model's own threshold sets the slider's scale
      slider.max = String(Math.max(answer.Threshold, answer.Score) * 2 || 1);
      slider.value = String(answer.Threshold);
      slider.disabled = false;
    }
    sliderValue.textContent = fmt(answer.Threshold, 4);
    showAnswer(answer, file, result);
  }
  input.addEventListener("change", () => { file = input.files[0]; threshold = undefined; run(); });
  slider.addEventListener("change", () => { threshold = Number(slider.value); run(); });
  const drop = h("div", { class: "drop", id: "try-drop", tabindex: "0" }, "Drop an image here, or choose one: ", input);
  drop.addEventListener("dragover", (e) => e.preventDefault());
  drop.addEventListener("drop", (e) => { e.preventDefault(); file = e.dataTransfer.files[0]; threshold = undefined; run(); });
  box.replaceChildren(drop, h("div", { class: "inline" }, h("label", { for: "threshold" }, "Threshold", slider), sliderValue), result);
}

function showAnswer(answer, file, box) {
  const r = answer.DetectAnomalyResult;
  const url = URL.createObjectURL(file);
  const heat = answer.Heatmap ? h("img", { id: "heatmap", class: "overlay", src: `data:image/png;base64,${answer.Heatmap}`, alt: "heatmap" }) : null;
  const maskData = r.AnomalyMask ?? answer.AnomalyMask;
  const mask = maskData ? h("img", { id: "answer-mask", class: "overlay mask", src: `data:image/png;base64,${maskData}`, alt: "mask", hidden: true }) : null;
  const opacity = h("input", { id: "heatmap-opacity", type: "range", min: "0", max: "1", step: "0.05", value: "0.7", "aria-label": "Heatmap opacity" });
  opacity.addEventListener("input", () => { if (heat) heat.style.opacity = opacity.value; });
  if (heat) heat.style.opacity = opacity.value;
  const classes = (r.Anomalies ?? []).slice(1).map((a) => h("li", {},
    h("span", { class: "swatch", style: { background: a.PixelAnomaly.Color } }), ` ${a.Name}: ${(100 * a.PixelAnomaly.TotalPercentageArea).toFixed(2)}% of the image`));
  box.replaceChildren(
    h("p", { id: "verdict", class: r.IsAnomalous ? "verdict bad" : "verdict ok" }, r.IsAnomalous ? "Anomalous" : "Normal",
      h("span", { class: "muted" }, ` · confidence ${(100 * r.Confidence).toFixed(1)}% · score ${fmt(answer.Score, 4)} against ${fmt(answer.Threshold, 4)}`)),
    classes.length ? h("ul", { id: "answer-classes" }, classes) : "",
    h("div", { class: "inline" }, h("label", { for: "heatmap-opacity" }, "Heatmap opacity", opacity),
      mask ? h("label", { class: "check" }, h("input", { id: "show-mask", type: "checkbox", onchange: (e) => { mask.hidden = !e.target.checked; } }), "Show mask") : ""),
    h("div", { class: "viewer" }, h("img", { id: "try-image", src: url, alt: file.name }), heat, mask));
}

// A dataset in the console: its statistics, a thumbnail grid (pages of 100, filters by label and
// by source), one image at full size with its mask, relabelling, and uploads of files or folders
// (normal/ and anomaly/ subfolders label their images). Changes go through AWS's own
// UpdateDatasetEntries, as manifest lines shaped the way Ground Truth writes them.

import { datasets, lookout, uploadImage } from "./api.js";
import { TRANSITIONAL, attempt, explain, h, read, render, show, statusBadge } from "./ui.js";

const LABELS = { 0: "normal", 1: "anomaly" };
const IMAGE_TYPES = new Set(["image/png", "image/jpeg"]);

function labelLine(sourceRef, label, previous) {
  // Keep what the line carried (masks, other attributes) but its classification label.
  const line = previous ? JSON.parse(previous) : {};
  for (const [key, value] of Object.entries(line)) {
    if (key.endsWith("-metadata") && value?.type === "groundtruth/image-classification") {
      delete line[key];
      delete line[key.slice(0, -"-metadata".length)];
    }
  }
  line["source-ref"] = sourceRef;
  if (label === null) return line;  // unlabelled
  line["anomaly-label"] = label;
  line["anomaly-label-metadata"] = {
    "class-name": LABELS[label], type: "groundtruth/image-classification", "human-annotated": "yes",
    "job-name": "loupe-console", "creation-date": new Date().toISOString().replace("Z", ""),
  };
  return line;
}

// The label a file's folder gives it: .../normal/x.png -> 0, .../anomaly/x.png -> 1.
function labelFromPath(path, fallback) {
  const parts = path.toLowerCase().split("/").slice(0, -1);
  if (parts.includes("anomaly") || parts.includes("anomalous")) return 1;
  if (parts.includes("normal")) return 0;
  return fallback;
}

async function filesOfEntry(entry, path = "") {
  if (entry.isFile) return [await new Promise((ok, fail) => entry.file((f) => ok({ file: f, path: path + f.name }), fail))];
  const reader = entry.createReader();
  const found = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    for (const child of batch) found.push(...(await filesOfEntry(child, `${path}${entry.name}/`)));
  }
  return found;
}

async function waitForDataset(project, type) {
  for (;;) {
    const d = (await lookout.describeDataset(project, type)).DatasetDescription;
    if (!TRANSITIONAL.test(d.Status)) return d;
    await new Promise((ok) => setTimeout(ok, 700));
  }
}

export async function datasetView(project, type) {
  document.getElementById("crumbs").replaceChildren(
    h("a", { href: "#/projects" }, "Projects"), " / ",
    h("a", { href: `#/projects/${encodeURIComponent(project)}` }, project), ` / ${type} dataset`);
  const stats = h("p", { id: "dataset-stats", class: "muted" }, "Loading…");
  const grid = h("div", { id: "grid", class: "grid" });
  const pager = h("div", { class: "actions" });
  const detail = h("section", { id: "detail", hidden: true, "aria-label": "Image" });
  const state = { label: "", contains: "", tokens: [null], page: 0 };

  const label = h("select", { id: "filter-label", "aria-label": "Show" },
    h("option", { value: "" }, "All images"), h("option", { value: "normal" }, "Normal"),
    h("option", { value: "anomaly" }, "Anomaly"), h("option", { value: "unlabelled" }, "Unlabelled"));
  const contains = h("input", { id: "filter-source", type: "search", placeholder: "part of the source", "aria-label": "Source contains" });
  const filters = h("form", {
    class: "inline", onsubmit: (e) => { e.preventDefault(); state.label = label.value; state.contains = contains.value.trim(); state.tokens = [null]; state.page = 0; loadPage(); },
  }, h("label", { for: "filter-label" }, "Show", label), h("label", { for: "filter-source" }, "Source contains", contains),
  h("button", { type: "submit", class: "secondary" }, "Filter"));
  label.addEventListener("change", () => filters.requestSubmit());

  async function loadStats() {
    const d = await read(() => lookout.describeDataset(project, type));
    if (!d) { stats.textContent = "This dataset cannot be read."; return null; }
    const s = d.DatasetDescription.ImageStats ?? {};
    stats.replaceChildren(statusBadge(d.DatasetDescription.Status), ` ${s.Total ?? 0} images · ${s.Labeled ?? 0} labelled · ${s.Normal ?? 0} normal · ${s.Anomaly ?? 0} anomalous `,
      d.DatasetDescription.StatusMessage ? h("span", {}, `· ${d.DatasetDescription.StatusMessage}`) : "");
    return d.DatasetDescription;
  }

  async function loadPage() {
    const started = performance.now();
    const found = await read(() => datasets.browse(project, type, { label: state.label, contains: state.contains, token: state.tokens[state.page] }));
    if (!found) { grid.replaceChildren(h("p", { class: "empty" }, "The images could not be read.")); return; }
    state.tokens[state.page + 1] = found.next_token;
    grid.replaceChildren(...(found.entries.length ? found.entries.map(tile) : [h("p", { class: "empty" }, "No images here.")]));
    pager.replaceChildren(
      h("button", { type: "button", class: "secondary", disabled: state.page === 0, onclick: () => { state.page -= 1; loadPage(); } }, "Previous 100"),
      h("span", { class: "muted" }, `Page ${state.page + 1}`),
      h("button", { type: "button", class: "secondary", disabled: !found.next_token, onclick: () => { state.page += 1; loadPage(); } }, "Next 100"));
    await Promise.all([...grid.querySelectorAll("img")].map((img) => img.decode().catch(() => null)));
    grid.dataset.loadedMs = String(Math.round(performance.now() - started));  // read by the browser test
  }

  function tile(entry) {
    const name = entry.source_ref.split("/").pop();
    const kind = entry.label === null ? "unlabelled" : LABELS[entry.label];
    return h("button", { type: "button", class: `tile ${kind}`, "data-source": entry.source_ref, "data-label": kind, title: entry.source_ref, onclick: () => open(entry) },
      entry.image ? h("img", { src: datasets.fileUrl(project, type, entry.image, "thumbnail"), alt: name, width: "160", height: "160" }) : h("span", {}, "no image"),
      h("span", { class: "tile-label" }, kind, entry.mask ? " · mask" : ""));
  }

  function open(entry) {
    const image = h("img", { id: "full-image", src: datasets.fileUrl(project, type, entry.image), alt: entry.source_ref });
    const mask = entry.mask ? h("img", { id: "full-mask", class: "mask", src: datasets.fileUrl(project, type, entry.mask), alt: "mask" }) : null;
    const relabel = (value, text) => h("button", {
      type: "button", class: value === entry.label ? "" : "secondary", disabled: value === entry.label,
      onclick: async () => {
        const done = await attempt(() => datasets.updateEntries(project, type, [labelLine(entry.source_ref, value, entry.line)]));
        if (!done) return;
        const d = await waitForDataset(project, type);
        show(d.Status === "UPDATE_COMPLETE" ? `${entry.source_ref.split("/").pop()} is now ${LABELS[value]}.` : `The change failed: ${d.StatusMessage}`,
          d.Status === "UPDATE_COMPLETE" ? "info" : "error");
        detail.hidden = true;
        await Promise.all([loadStats(), loadPage()]);
      },
    }, text);
    detail.replaceChildren(
      h("div", { class: "detail-head" }, h("strong", {}, entry.source_ref),
        h("button", { type: "button", class: "secondary", onclick: () => { detail.hidden = true; } }, "Close")),
      h("p", { class: "muted" }, `${entry.width}×${entry.height} · ${entry.label === null ? "unlabelled" : LABELS[entry.label]}`,
        entry.anomaly_classes.length ? ` · classes: ${entry.anomaly_classes.map((c) => c.name).join(", ")}` : "",
        entry.note ? ` · ${entry.note}` : ""),
      h("div", { class: "actions" }, relabel(0, "Mark normal"), relabel(1, "Mark anomaly"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!window.confirm(`Remove ${entry.source_ref} from the ${type} dataset?`)) return;
          if (!(await attempt(() => datasets.remove(project, type, [entry.source_ref])))) return;
          const d = await waitForDataset(project, type);
          show(d.Status === "UPDATE_COMPLETE" ? `${entry.source_ref.split("/").pop()} was removed.` : `The removal failed: ${d.StatusMessage}`,
            d.Status === "UPDATE_COMPLETE" ? "info" : "error");
          detail.hidden = true;
          await Promise.all([loadStats(), loadPage()]);
        } }, "Remove from dataset"),
        mask ? h("label", { class: "check" }, h("input", { type: "checkbox", checked: true, onchange: (e) => { mask.hidden = !e.target.checked; } }), "Show mask") : ""),
      h("div", { class: "viewer" }, image, mask));
    detail.hidden = false;
    detail.scrollIntoView({ block: "nearest" });
  }

  // --- uploads ---
  const fallback = h("select", { id: "upload-label", "aria-label": "Label of files outside normal/ and anomaly/" },
    h("option", { value: "" }, "unlabelled"), h("option", { value: "0" }, "normal"), h("option", { value: "1" }, "anomaly"));
  const progress = h("ul", { id: "upload-progress", class: "progress" });
  const pick = h("input", { id: "upload-files", type: "file", multiple: true, accept: "image/png,image/jpeg" });
  const pickFolder = h("input", { id: "upload-folder", type: "file", webkitdirectory: true });
  pick.addEventListener("change", () => upload([...pick.files].map((f) => ({ file: f, path: f.name }))));
  pickFolder.addEventListener("change", () => upload([...pickFolder.files].map((f) => ({ file: f, path: f.webkitRelativePath || f.name }))));
  const drop = h("div", { id: "drop-zone", class: "drop", tabindex: "0" },
    "Drop images or a folder with normal/ and anomaly/ subfolders here, or choose ",
    h("label", { class: "inline-label" }, "files ", pick), " or ", h("label", { class: "inline-label" }, "a folder ", pickFolder), ".");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const items = [...(e.dataTransfer.items ?? [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
    const files = items.length ? (await Promise.all(items.map((entry) => filesOfEntry(entry)))).flat()
      : [...e.dataTransfer.files].map((f) => ({ file: f, path: f.name }));
    upload(files);
  });

  async function upload(files) {
    if (!files.length) return;
    const fallbackLabel = fallback.value === "" ? null : Number(fallback.value);
    const lines = [];
    const refused = [];
    progress.replaceChildren();
    for (const { file, path } of files) {
      const row = h("li", { "data-file": path }, `${path}: uploading…`);
      progress.append(row);
      if (!IMAGE_TYPES.has(file.type)) {
        row.textContent = `${path}: refused — only PNG and JPEG images are accepted`;
        row.className = "bad"; refused.push(path); continue;
      }
      try {
        const stored = await uploadImage(project, file);
        lines.push(labelLine(stored.source_ref, labelFromPath(path, fallbackLabel)));
        row.textContent = `${path}: uploaded`; row.className = "ok";
      } catch (err) {
        row.textContent = `${path}: refused — ${explain(err)}`; row.className = "bad"; refused.push(path);
      }
    }
    if (!lines.length) { show(`No image was added: ${refused.length} refused.`); return; }
    if (!(await attempt(() => datasets.updateEntries(project, type, lines)))) return;
    const d = await waitForDataset(project, type);
    show(`${lines.length} added to the ${type} dataset, ${refused.length} refused. ${d.StatusMessage ?? ""}`, d.Status === "UPDATE_COMPLETE" ? "info" : "error");
    await Promise.all([loadStats(), loadPage()]);
  }

  render(`${project}: ${type} dataset`, stats,
    h("h2", {}, "Add images"), h("div", { class: "inline" }, h("label", { for: "upload-label" }, "Label of loose files", fallback)), drop, progress,
    h("h2", {}, "Images"), filters, grid, pager, detail);
  const d = await loadStats();
  if (d) await loadPage();
}

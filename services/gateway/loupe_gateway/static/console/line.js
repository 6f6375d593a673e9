// Watching the line: the latest ingest results of a project as they arrive (the image while the
// broker still holds it, the verdict or the error code), and the human-review queue of each flow
// definition that watches the project, with the way to the reviewer page.

import { line } from "./api.js";
import { h, read, render } from "./ui.js";

let timer = null;

export async function lineView(project) {
  clearTimeout(timer);
  const here = location.hash;
  document.getElementById("crumbs").replaceChildren(
    h("a", { href: "#/projects" }, "Projects"), " / ",
    h("a", { href: `#/projects/${encodeURIComponent(project)}` }, project), " / line");
  const queues = h("div", { id: "queues" }, h("p", {}, "Loading…"));
  const results = h("div", { id: "results" }, h("p", {}, "Loading…"));
  render(`${project}: the line`, h("h2", {}, "Human review"), queues,
    h("h2", {}, "Latest ingest results"), h("p", { class: "muted" }, "Images published to the ingest topic for this project, newest first; refreshed every 2 s."), results);
  const seen = new Set();

  async function refresh() {
    if (location.hash !== here) return;
    const [found, flows] = await Promise.all([read(() => line.results(project)), read(() => line.flows())]);
    if (found) showResults(found.results);
    if (flows) await showQueues(flows.FlowDefinitions ?? []);
    timer = setTimeout(refresh, 2000);
  }

  function showResults(items) {
    if (!items.length) { results.replaceChildren(h("p", { class: "empty" }, "No ingest results for this project yet.")); return; }
    results.replaceChildren(h("table", { id: "results-table" },
      h("thead", {}, h("tr", {}, ["Image", "Image id", "Version", "Verdict", "Received"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((r) => {
        const key = `${r.source.partition}/${r.source.offset}`;
        const fresh = !seen.has(key);
        seen.add(key);
        const d = r.data?.DetectAnomalyResult;
        const verdict = r.error_code === 0 && d
          ? h("span", { class: d.IsAnomalous ? "status bad" : "status ok" }, `${d.IsAnomalous ? "anomalous" : "normal"} · ${(100 * d.Confidence).toFixed(1)}%`)
          : h("span", { class: "status bad", "data-error": r.error_detail?.code }, `${r.error_detail?.code}: ${r.error_detail?.message}`);
        return h("tr", { "data-image-id": r.image_id ?? "", class: fresh ? "fresh" : "" },
          h("td", {}, h("img", { class: "line-image", src: line.imageUrl(r.source), alt: r.image_id ?? key, width: "96", height: "96", loading: "lazy" })),
          h("td", {}, r.image_id ?? "—"), h("td", {}, r.model_version ?? "—"), h("td", {}, verdict),
          h("td", {}, new Date(r.received_at).toLocaleTimeString()));
      }))));
    // An image the broker no longer holds (or a claim-checked one) shows as its id only.
    for (const img of results.querySelectorAll("img.line-image")) img.addEventListener("error", () => img.replaceWith("—"), { once: true });
  }

  async function showQueues(flows) {
    const mine = flows.filter((f) => f.HumanLoopActivationConfig?.ProjectName === project);
    if (!mine.length) {
      queues.replaceChildren(h("p", { class: "empty" }, "No flow definition sends this project's doubtful results to people."));
      return;
    }
    const described = await Promise.all(mine.map((f) => read(() => line.flow(f.FlowDefinitionName))));
    queues.replaceChildren(h("table", { id: "queues-table" },
      h("thead", {}, h("tr", {}, ["Flow definition", "Model version", "Waiting for review", "Completed", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, mine.map((f, i) => {
        const counts = described[i]?.HumanLoopCounts ?? {};
        return h("tr", { "data-flow": f.FlowDefinitionName },
          h("td", {}, f.FlowDefinitionName), h("td", {}, f.HumanLoopActivationConfig.ModelVersion ?? "any"),
          h("td", { class: "waiting" }, String(counts.InProgress ?? 0)), h("td", {}, String(counts.Completed ?? 0)),
          h("td", {}, h("a", { href: "/loupe/review", target: "_blank", rel: "noopener" }, "Open the reviewer page")));
      }))));
  }

  await refresh();
}

// The Loupe console: a small app of plain modules, hash-routed. Every call goes through api.js
// to Loupe's own API; every failure is shown in words (explain), never left blank.

import { datasets, lookout, session } from "./api.js";
import { datasetView } from "./datasets.js";
import { lineView } from "./line.js";
import { modelView } from "./models.js";
import { TRANSITIONAL, attempt, clearNotice, h, read, render, show, statusBadge, view, when } from "./ui.js";

const crumbs = document.getElementById("crumbs");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");
let refreshTimer = null;

// --- views -----------------------------------------------------------------------------------

function signInView() {
  crumbs.replaceChildren();
  const key = h("input", { id: "access-key", name: "accessKeyId", autocomplete: "username", required: true });
  const secret = h("input", { id: "secret-key", name: "secretAccessKey", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      const s = await attempt(() => session.signIn(key.value.trim(), secret.value));
      secret.value = "";  // the secret is never kept
      if (s) { signedIn(s); location.hash = "#/projects"; }
    },
  },
  h("label", { for: "access-key" }, "Access key ID", key),
  h("label", { for: "secret-key" }, "Secret access key", secret),
  h("button", { type: "submit" }, "Sign in"));
  view.replaceChildren(h("div", { class: "card" }, h("h1", {}, "Sign in to Loupe"),
    h("p", { class: "muted" }, "Use an access key of this Loupe (LOUPE_ACCESS_KEY_ID). The secret is sent once and never stored in the browser."),
    form));
  document.title = "Sign in · Loupe console";
  key.focus();
}

async function projectsView() {
  crumbs.replaceChildren("Projects");
  const name = h("input", { id: "new-project", name: "ProjectName", placeholder: "my-project", required: true, pattern: "[a-zA-Z0-9][a-zA-Z0-9_\\-]*", maxlength: "255" });
  const create = h("form", {
    class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      const made = await attempt(() => lookout.createProject(name.value.trim()), `Project ${name.value.trim()} created.`);
      if (made) { name.value = ""; await fillProjects(table); }
    },
  }, h("label", { for: "new-project" }, "New project name", name), h("button", { type: "submit" }, "Create project"));
  const table = h("div", { id: "projects" }, h("p", {}, "Loading projects…"));
  render("Projects", create, table);
  await fillProjects(table);
}

async function projectSummary(p) {
  const [described, models] = await Promise.all([
    lookout.describeProject(p.ProjectName).catch(() => null),
    lookout.listModels(p.ProjectName).catch(() => null),
  ]);
  const datasets = described?.ProjectDescription?.Datasets ?? [];
  const versions = models?.Models ?? [];
  const latest = versions.slice().sort((a, b) => Number(b.ModelVersion) - Number(a.ModelVersion))[0];
  return { datasets, versions, latest };
}

async function fillProjects(table) {
  const listed = await read(() => lookout.listProjects());
  if (!listed) { table.replaceChildren(h("p", { class: "empty" }, "The projects could not be read.")); return; }
  const projects = listed.Projects ?? [];
  if (!projects.length) {
    table.replaceChildren(h("p", { class: "empty" }, "No projects yet: create one above."));
    return;
  }
  const summaries = await Promise.all(projects.map(projectSummary));
  const rows = projects.map((p, i) => {
    const { datasets, versions, latest } = summaries[i];
    return h("tr", { "data-project": p.ProjectName },
      h("td", {}, h("a", { href: `#/projects/${encodeURIComponent(p.ProjectName)}` }, p.ProjectName)),
      h("td", {}, when(p.CreationTimestamp)),
      h("td", {}, datasets.length ? datasets.map((d) => h("div", {}, `${d.DatasetType} `, statusBadge(d.Status))) : h("span", { class: "muted" }, "none")),
      h("td", {}, versions.length ? [`${versions.length} `, latest ? statusBadge(latest.Status) : ""] : h("span", { class: "muted" }, "none")),
      h("td", {}, h("button", { class: "danger", type: "button", onclick: () => deleteProject(p.ProjectName, table) }, "Delete")));
  });
  table.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["Project", "Created", "Datasets", "Model versions (latest)", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)),
    listed.NextToken ? h("p", { class: "muted" }, `The first ${projects.length} projects are shown.`) : "");
}

async function deleteProject(project, table) {
  if (!window.confirm(`Delete project ${project}? Its datasets and model versions must be deleted first.`)) return;
  const done = await attempt(() => lookout.deleteProject(project), `Project ${project} deleted.`);
  if (done) await fillProjects(table);
}

async function projectView(project) {
  crumbs.replaceChildren(h("a", { href: "#/projects" }, "Projects"), " / ", project);
  const datasets = h("div", { id: "datasets" }, h("p", {}, "Loading datasets…"));
  const models = h("div", { id: "models" }, h("p", {}, "Loading model versions…"));
  const bucket = h("input", { id: "output-bucket", value: "loupe-console", required: true });
  const train = h("form", {
    class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      const made = await attempt(() => lookout.createModel(project, bucket.value.trim()));
      if (made) { show(`Training model version ${made.ModelMetadata.ModelVersion} started.`, "info"); await refresh(); }
    },
  }, h("label", { for: "output-bucket" }, "Output bucket", bucket), h("button", { type: "submit" }, "Train a model"));
  render(project, h("p", {}, h("a", { href: `#/projects/${encodeURIComponent(project)}/line`, id: "watch-line" }, "Watch the line: ingest results and human review")),
    h("h2", {}, "Datasets"), datasets, h("h2", {}, "Model versions"), train, models);
  async function refresh() {
    const busy = await Promise.all([fillDatasets(project, datasets, refresh), fillModels(project, models, refresh)]);
    clearTimeout(refreshTimer);
    if (busy.some(Boolean) && location.hash === `#/projects/${encodeURIComponent(project)}`) refreshTimer = setTimeout(refresh, 2000);
  }
  await refresh();
}

async function fillDatasets(project, box, refresh) {
  const described = await read(() => lookout.describeProject(project));
  if (!described) { box.replaceChildren(h("p", { class: "empty" }, "The project could not be read.")); return false; }
  const types = ["train", "test"];
  const found = Object.fromEntries((described.ProjectDescription.Datasets ?? []).map((d) => [d.DatasetType, d]));
  const details = await Promise.all(types.map((t) => (found[t] ? lookout.describeDataset(project, t).catch(() => null) : null)));
  const rows = types.map((t, i) => {
    const d = details[i]?.DatasetDescription;
    const stats = d?.ImageStats ?? {};
    return h("tr", { "data-dataset": t },
      h("td", {}, d ? h("a", { href: `#/projects/${encodeURIComponent(project)}/datasets/${t}` }, t) : t),
      h("td", {}, d ? statusBadge(d.Status) : h("span", { class: "muted" }, "not created")),
      h("td", {}, d ? `${stats.Total ?? 0} images · ${stats.Labeled ?? 0} labelled · ${stats.Normal ?? 0} normal · ${stats.Anomaly ?? 0} anomalous` : ""),
      h("td", { class: "muted" }, d?.StatusMessage ?? ""),
      h("td", { class: "actions" }, d
        ? h("button", { class: "danger", type: "button", onclick: async () => {
          if (!window.confirm(`Delete the ${t} dataset of ${project}?`)) return;
          if (await attempt(() => lookout.deleteDataset(project, t), `The ${t} dataset was deleted.`)) await refresh();
        } }, "Delete")
        : [h("button", { class: "secondary", type: "button", onclick: async () => {
          if (await attempt(() => lookout.createDataset(project, t), `An empty ${t} dataset was created.`)) await refresh();
        } }, "Create empty"), manifestForm(project, t, refresh)]));
  });
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["Dataset", "Status", "Images", "Message", ""].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows)));
  return details.some((d) => TRANSITIONAL.test(d?.DatasetDescription?.Status ?? ""));
}

// A dataset made from a Ground Truth manifest in a bucket, as Lookout's CreateDataset does.
function manifestForm(project, type, refresh) {
  const bucket = h("input", { name: "bucket", placeholder: "bucket", "aria-label": `Manifest bucket for ${type}`, required: true });
  const key = h("input", { name: "key", placeholder: "path/to/file.manifest", "aria-label": `Manifest key for ${type}`, required: true });
  return h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    if (await attempt(() => datasets.createFromManifest(project, type, bucket.value.trim(), key.value.trim()), `The ${type} dataset is importing the manifest.`)) await refresh();
  } }, bucket, key, h("button", { type: "submit", class: "secondary" }, "Import manifest"));
}

async function fillModels(project, box, refresh) {
  const listed = await read(() => lookout.listModels(project));
  if (!listed) { box.replaceChildren(h("p", { class: "empty" }, "The model versions could not be read.")); return false; }
  const versions = (listed.Models ?? []).slice().sort((a, b) => Number(b.ModelVersion) - Number(a.ModelVersion));
  if (!versions.length) { box.replaceChildren(h("p", { class: "empty" }, "No model versions yet.")); return false; }
  const described = await Promise.all(versions.map((m) => lookout.describeModel(project, m.ModelVersion).catch(() => null)));
  const rows = versions.map((m, i) => {
    const d = described[i]?.ModelDescription ?? m;
    const perf = d.Performance ?? {};
    const min = h("input", { type: "number", min: "1", max: "100", value: "1", "aria-label": `Minimum inference units of version ${m.ModelVersion}` });
    const max = h("input", { type: "number", min: "1", max: "100", value: "1", "aria-label": `Maximum inference units of version ${m.ModelVersion}` });
    const act = (label, cls, work, done) => h("button", { class: cls, type: "button", onclick: async () => {
      if (await attempt(work, done)) await refresh();
    } }, label);
    const actions = [];
    if (d.Status === "TRAINED") actions.push(min, max, act("Start hosting", "", () => lookout.startModel(project, m.ModelVersion, Number(min.value), Number(max.value)), `Version ${m.ModelVersion} is starting.`));
    if (d.Status === "HOSTED" || d.Status === "STARTING_HOSTING") actions.push(act("Stop hosting", "secondary", () => lookout.stopModel(project, m.ModelVersion), `Version ${m.ModelVersion} is stopping.`));
    if (!TRANSITIONAL.test(d.Status) && d.Status !== "HOSTED") actions.push(act("Delete", "danger", () => lookout.deleteModel(project, m.ModelVersion), `Version ${m.ModelVersion} is being deleted.`));
    const fmt = (v) => (typeof v === "number" ? v.toFixed(3) : "—");
    return h("tr", { "data-version": m.ModelVersion },
      h("td", {}, h("a", { href: `#/projects/${encodeURIComponent(project)}/models/${m.ModelVersion}` }, `Version ${m.ModelVersion}`)),
      h("td", {}, statusBadge(d.Status)),
      h("td", { class: "muted" }, d.StatusMessage ?? ""),
      h("td", {}, `F1 ${fmt(perf.F1Score)} · precision ${fmt(perf.Precision)} · recall ${fmt(perf.Recall)}`),
      h("td", { class: "actions" }, actions));
  });
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["Version", "Status", "Message", "Evaluation (test dataset)", ""].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows)));
  return described.some((x) => TRANSITIONAL.test(x?.ModelDescription?.Status ?? ""));
}

// --- session and routing ---------------------------------------------------------------------

function signedIn(s) {
  who.textContent = `${s.accessKeyId} · until ${when(s.expiresAt)}`;
  signOutButton.hidden = false;
}

signOutButton.addEventListener("click", async () => {
  await attempt(() => session.signOut());
  who.textContent = "";
  signOutButton.hidden = true;
  location.hash = "#/sign-in";
  show("Signed out.", "info");
});

async function route() {
  clearTimeout(refreshTimer);
  const hash = location.hash || "#/projects";
  if (hash === "#/sign-in") { signInView(); return; }
  if (signOutButton.hidden) {
    try { signedIn(await session.current()); } catch { location.hash = "#/sign-in"; return; }
  }
  const dataset = hash.match(/^#\/projects\/([^/]+)\/datasets\/(train|test)$/);
  const model = hash.match(/^#\/projects\/([^/]+)\/models\/([0-9]+)$/);
  const watched = hash.match(/^#\/projects\/([^/]+)\/line$/);
  const project = hash.match(/^#\/projects\/([^/]+)$/);
  if (dataset) await datasetView(decodeURIComponent(dataset[1]), dataset[2]);
  else if (model) await modelView(decodeURIComponent(model[1]), model[2]);
  else if (watched) await lineView(decodeURIComponent(watched[1]));
  else if (project) await projectView(decodeURIComponent(project[1]));
  else await projectsView();
}

window.addEventListener("hashchange", () => { clearNotice(); route(); });
route();

// What every view of the console shares: building DOM from data (always as text, never markup),
// status badges, and errors shown in words.

import { ApiError } from "./api.js";

export const view = document.getElementById("view");
const notice = document.getElementById("notice");
export const TRANSITIONAL = /(IN_PROGRESS|TRAINING|STARTING|STOPPING|DELETING|PENDING)/;

// --- small DOM helpers (text is always set as text: nothing from the API becomes markup) ---------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "style") Object.assign(el.style, v);  // CSSOM: the page's CSP forbids style attributes
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v !== undefined && v !== null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function statusBadge(status) {
  const s = status || "—";
  const cls = /FAILED/.test(s) ? "bad" : TRANSITIONAL.test(s) ? "busy" : /(COMPLETE|TRAINED|HOSTED|SUCCEEDED)/.test(s) ? "ok" : "";
  return h("span", { class: `status ${cls}`, "data-status": s }, s.replaceAll("_", " ").toLowerCase());
}

export const when = (t) => (t ? new Date(typeof t === "number" ? t * 1000 : t).toLocaleString() : "—");

// --- errors in words -------------------------------------------------------------------------

const HINTS = {
  ConflictException: "Loupe refused because of the state of something else. ",
  ResourceNotFoundException: "It does not exist (any more): it may have been deleted elsewhere. ",
  ValidationException: "A value was not accepted. ",
  ServiceQuotaExceededException: "A limit of Loupe was reached. ",
  ThrottlingException: "Loupe is busy; try again in a moment. ",
  InternalServerException: "Loupe failed on its side; try again, and if it persists look in its logs. ",
  NetworkError: "",
};

export function explain(err) {
  if (!(err instanceof ApiError)) return `Something went wrong in the console: ${err.message || err}`;
  const hint = HINTS[err.code] ?? "";
  const id = err.requestId ? ` (request ${err.requestId})` : "";
  return `${hint}${err.message}${id}`;
}

export function show(message, kind = "error") {
  notice.textContent = message;
  notice.className = kind;
  notice.hidden = false;
}

export function clearNotice() { notice.hidden = true; notice.textContent = ""; }

// A change the user asked for: the last notice goes, the outcome (or the error) is shown.
export async function attempt(work, done) {
  clearNotice();
  return run(work, done);
}

// A read in the background (a refresh): it leaves the notice of the last change in place.
export async function read(work) {
  return run(work);
}

async function run(work, done) {
  try {
    const result = await work();
    if (done) show(done, "info");
    return result;
  } catch (err) {
    if (err instanceof ApiError && (err.code === "AccessDeniedException" || err.code === "ERROR_USER_NOT_EXISTS")) {
      location.hash = "#/sign-in";
    }
    show(explain(err));
    return undefined;
  }
}

export function render(title, ...children) {
  view.replaceChildren(h("h1", {}, title), ...children);
  document.title = `${title} · Loupe console`;
  view.focus();
}


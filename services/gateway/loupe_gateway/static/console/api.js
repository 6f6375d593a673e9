// Loupe's own API, called with the console session: the cookie authenticates, the CSRF token
// (kept in memory only, read again from the session route after a reload) guards every change.

const LOOKOUT = "/2020-11-20";
let csrfToken = "";

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

// Both error shapes Loupe answers in: AWS JSON (Lookout routes) and the AILabTools envelope
// (Loupe's own routes).
async function failure(response) {
  let body = {};
  try { body = await response.json(); } catch { /* not JSON: keep the status */ }
  const requestId = response.headers.get("x-amzn-RequestId") || body.request_id || "";
  if (body.error_detail) {
    const d = body.error_detail;
    return new ApiError(response.status, d.code, d.message || d.code_message || `HTTP ${response.status}`, requestId);
  }
  const code = (response.headers.get("x-amzn-ErrorType") || body.__type || "").split(":")[0];
  const message = body.message || body.Message || `The server answered HTTP ${response.status}`;
  return new ApiError(response.status, code || `HTTP ${response.status}`, message, requestId);
}

export async function call(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-Loupe-Csrf"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "NetworkError", "Loupe cannot be reached; check that it is running", "");
  }
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  const value = text ? JSON.parse(text) : {};
  return value.error_code === 0 && "data" in value ? value.data : value;
}

export const session = {
  async current() {
    const s = await call("GET", "/loupe/console/api/session");
    csrfToken = s.csrfToken;
    return s;
  },
  async signIn(accessKeyId, secretAccessKey) {
    const s = await call("POST", "/loupe/console/api/session", { accessKeyId, secretAccessKey });
    csrfToken = s.csrfToken;
    return s;
  },
  async signOut() {
    await call("DELETE", "/loupe/console/api/session");
    csrfToken = "";
  },
};

const enc = encodeURIComponent;

export const lookout = {
  // Every page of ListProjects, up to `limit` projects (NextToken set when more remain).
  listProjects: async (limit = 500) => {
    const projects = [];
    let token = "";
    do {
      const page = await call("GET", `${LOOKOUT}/projects?maxResults=100${token ? `&nextToken=${enc(token)}` : ""}`);
      projects.push(...(page.Projects ?? []));
      token = page.NextToken ?? "";
    } while (token && projects.length < limit);
    return { Projects: projects, NextToken: token || undefined };
  },
  createProject: (name) => call("POST", `${LOOKOUT}/projects`, { ProjectName: name }),
  describeProject: (name) => call("GET", `${LOOKOUT}/projects/${enc(name)}`),
  deleteProject: (name) => call("DELETE", `${LOOKOUT}/projects/${enc(name)}`),
  describeDataset: (project, type) => call("GET", `${LOOKOUT}/projects/${enc(project)}/datasets/${enc(type)}`),
  createDataset: (project, type) => call("POST", `${LOOKOUT}/projects/${enc(project)}/datasets`, { DatasetType: type }),
  deleteDataset: (project, type) => call("DELETE", `${LOOKOUT}/projects/${enc(project)}/datasets/${enc(type)}`),
  listModels: (project) => call("GET", `${LOOKOUT}/projects/${enc(project)}/models?maxResults=100`),
  describeModel: (project, version) => call("GET", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}`),
  createModel: (project, bucket) => call("POST", `${LOOKOUT}/projects/${enc(project)}/models`,
    { OutputConfig: { S3Location: { Bucket: bucket, Prefix: `${project}/` } } }),
  deleteModel: (project, version) => call("DELETE", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}`),
  startModel: (project, version, min, max) => call("POST", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}/start`,
    { MinInferenceUnits: min, ...(max ? { MaxInferenceUnits: max } : {}) }),
  stopModel: (project, version) => call("POST", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}/stop`),
};

const NATIVE = "/loupe/v1";
const utf8ToBase64 = (text) => {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
};

export const datasets = {
  // A page of entries with their file names (Loupe-native), newest filters as the grid sets them.
  browse: (project, type, { label, contains, token } = {}) => {
    const q = new URLSearchParams({ max_results: "100" });
    if (label) q.set("label", label);
    if (contains) q.set("source_ref_contains", contains);
    if (token) q.set("next_token", token);
    return call("GET", `${NATIVE}/projects/${enc(project)}/datasets/${enc(type)}/entries?${q}`);
  },
  fileUrl: (project, type, name, size = "full") =>
    `${NATIVE}/projects/${enc(project)}/datasets/${enc(type)}/files/${name.split("/").map(enc).join("/")}?size=${size}`,
  // AWS's UpdateDatasetEntries: JSON Lines, base64 in the body.
  updateEntries: (project, type, lines) => call("PATCH", `${LOOKOUT}/projects/${enc(project)}/datasets/${enc(type)}/entries`,
    { Changes: utf8ToBase64(lines.map((l) => JSON.stringify(l)).join("\n")) }),
  remove: (project, type, sourceRefs) => call("POST", `${NATIVE}/projects/${enc(project)}/datasets/${enc(type)}/entries/remove`,
    { source_refs: sourceRefs }),
  createFromManifest: (project, type, bucket, key) => call("POST", `${LOOKOUT}/projects/${enc(project)}/datasets`,
    { DatasetType: type, DatasetSource: { GroundTruthManifest: { S3Object: { Bucket: bucket, Key: key } } } }),
};

// One image into the project's upload bucket (Loupe-native); the answer's source_ref goes into a
// manifest line. Raw bytes with their own type: the server checks the bytes agree.
export async function uploadImage(project, file) {
  const response = await fetch(`${NATIVE}/projects/${enc(project)}/images?name=${enc(file.name)}`, {
    method: "POST", credentials: "same-origin", body: file,
    headers: { "Content-Type": file.type || "application/octet-stream", "X-Loupe-Csrf": csrfToken },
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()).data;
}

export const models = {
  evaluation: (project, version) => call("GET", `${NATIVE}/projects/${enc(project)}/models/${enc(version)}/evaluation`),
  hosting: (project, version) => call("GET", `${NATIVE}/projects/${enc(project)}/models/${enc(version)}/hosting`),
  reportUrl: (project, version) => `${NATIVE}/projects/${enc(project)}/models/${enc(version)}/artifacts/report.html`,
};

// The native DetectAnomalies: the model's answer, its score and threshold, the heatmap and mask.
export async function detectImage(project, version, file, threshold) {
  const q = new URLSearchParams({ heatmap: "true" });
  if (threshold !== undefined) q.set("threshold", String(threshold));
  const response = await fetch(`${NATIVE}/projects/${enc(project)}/models/${enc(version)}/detect?${q}`, {
    method: "POST", credentials: "same-origin", body: file,
    headers: { "Content-Type": file.type || "application/octet-stream", "X-Loupe-Csrf": csrfToken },
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()).data;
}

export const line = {
  results: (project) => call("GET", `${NATIVE}/projects/${enc(project)}/ingest-results?limit=50`),
  imageUrl: (source) => `${NATIVE}/ingest/${source.partition}/${source.offset}/image`,
  flows: () => call("GET", `${NATIVE}/flow-definitions`),
  flow: (name) => call("GET", `${NATIVE}/flow-definitions/${enc(name)}`),
};

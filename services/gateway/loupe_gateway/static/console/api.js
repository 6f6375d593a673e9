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
  listProjects: () => call("GET", `${LOOKOUT}/projects?MaxResults=100`),
  createProject: (name) => call("POST", `${LOOKOUT}/projects`, { ProjectName: name }),
  describeProject: (name) => call("GET", `${LOOKOUT}/projects/${enc(name)}`),
  deleteProject: (name) => call("DELETE", `${LOOKOUT}/projects/${enc(name)}`),
  describeDataset: (project, type) => call("GET", `${LOOKOUT}/projects/${enc(project)}/datasets/${enc(type)}`),
  createDataset: (project, type) => call("POST", `${LOOKOUT}/projects/${enc(project)}/datasets`, { DatasetType: type }),
  deleteDataset: (project, type) => call("DELETE", `${LOOKOUT}/projects/${enc(project)}/datasets/${enc(type)}`),
  listModels: (project) => call("GET", `${LOOKOUT}/projects/${enc(project)}/models?MaxResults=100`),
  describeModel: (project, version) => call("GET", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}`),
  createModel: (project, bucket) => call("POST", `${LOOKOUT}/projects/${enc(project)}/models`,
    { OutputConfig: { S3Location: { Bucket: bucket, Prefix: `${project}/` } } }),
  deleteModel: (project, version) => call("DELETE", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}`),
  startModel: (project, version, min, max) => call("POST", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}/start`,
    { MinInferenceUnits: min, ...(max ? { MaxInferenceUnits: max } : {}) }),
  stopModel: (project, version) => call("POST", `${LOOKOUT}/projects/${enc(project)}/models/${enc(version)}/stop`),
};

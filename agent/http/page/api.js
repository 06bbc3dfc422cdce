// The agent's HTTP API, as the page calls it: the token (when the agent has one) in an
// Authorization header, or as ?access_token= where a browser cannot send headers (WebSocket,
// EventSource). A refusal becomes an ApiError with the agent's code and data.problems.

const TOKEN_KEY = "voice-agent-token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || "http_error";
    this.data = body.data || {};
    this.hint = body.hint || "";
  }

  /** What to do about it in the page's words (agent/http/hints.py), else the agent's message. */
  get advice() {
    return this.hint || this.message;
  }

  get problems() {
    return Array.isArray(this.data.problems) ? this.data.problems : [];
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

let asking = null; // one dialog for all the requests that were refused at once

function askToken(refused) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-error").hidden = !refused;
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const given = input.value.trim();
      if (given) localStorage.setItem(TOKEN_KEY, given);
      asking = null;
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  return asking;
}

async function send(path, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}) };
    const given = token();
    if (given) headers.Authorization = `Bearer ${given}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      await askToken(Boolean(given));
      continue;
    }
    if (!response.ok) {
      let body = {};
      try { body = await response.json(); } catch { /* not JSON: the status says it */ }
      throw new ApiError(response.status, body);
    }
    return response;
  }
}

function profilePath(profile) {
  return `/api/profiles/${encodeURIComponent(profile)}`;
}

/** One command of the agent's command table; its `data`. */
export async function command(profile, name, body = {}) {
  const response = await send(`${profilePath(profile)}/commands/${encodeURIComponent(name)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return (await response.json()).data;
}

/** A voice file (or an archive of one) for the agent to check and install: multipart form data
 * (`file`, `scope`); the answer's data ({installed: [...]}). */
export async function importVoice(profile, form) {
  const response = await send(`${profilePath(profile)}/voices/import`, { method: "POST", body: form });
  const body = await response.json();
  return body.data ?? body;
}

export async function getJSON(path) {
  return (await send(path)).json();
}

/** A file the API serves (a sample's WAV, the report) as a blob: URL the page can show. */
export async function blobURL(path) {
  const blob = await (await send(path)).blob();
  return URL.createObjectURL(blob);
}

/** Speech from POST /api/tts as a blob: URL and the headers that say who spoke it. */
export async function speech(profile, body) {
  const response = await send("/api/tts", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ profile, ...body }),
  });
  return { url: URL.createObjectURL(await response.blob()), provider: response.headers.get("X-Provider"),
    voice: response.headers.get("X-Voice"), fallback: response.headers.get("X-Fallback") === "true" };
}

export function sampleAudioPath(profile, sample) {
  return `${profilePath(profile)}/samples/${encodeURIComponent(sample)}/audio`;
}

export function reportPath(profile) {
  return `${profilePath(profile)}/samples/report.png`;
}

function withToken(url) {
  const given = token();
  if (given) url.searchParams.set("access_token", given);
  return url;
}

export function socket(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(withToken(url).toString());
  ws.binaryType = "blob";
  return ws;
}

export function events(profile) {
  const url = new URL("/api/events", location.href);
  url.searchParams.set("profile", profile);
  return new EventSource(withToken(url).toString());
}

/** A recording for an audio command (`record`): the file's bytes as the body (audio/*), its other
 * fields (transcript, source) in the query string; the command's `data`. */
export async function commandWithAudio(profile, name, file, fields = {}) {
  const query = new URLSearchParams(Object.entries(fields).filter(([, value]) => value)).toString();
  const type = file.type && file.type.startsWith("audio/") ? file.type : "audio/octet-stream";
  const path = `${profilePath(profile)}/commands/${encodeURIComponent(name)}${query ? `?${query}` : ""}`;
  const response = await send(path, { method: "POST", headers: { "Content-Type": type }, body: file });
  return (await response.json()).data;
}

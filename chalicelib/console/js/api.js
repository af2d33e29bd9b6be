// The admin API: bearer token from sessionStorage, JSON in and out, errors in the server's words.

const TOKEN_KEY = "refund-console-token";
const BASE = document.querySelector('meta[name="api-base"]')?.content || "";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  /** ``message`` is a Chinese sentence for the operator: the server's own, or this page's words
   * for what went wrong before the server could answer (``CLIENT_ERRORS``). */
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || null;
  }
}

// What goes wrong on this side of the API: the server words every error it answers itself.
const CLIENT_ERRORS = {
  NETWORK: "网络连接失败，请检查网络后重试",
  TIMEOUT: "服务器长时间没有响应，请稍后刷新查看结果",
  // an answer that is not the API's JSON (e.g. a proxy's HTML error page)
  UNREADABLE: (status) => (status >= 500 ? "服务暂时不可用，请稍后重试" : `请求失败（HTTP ${status}），请刷新页面后重试`),
};
// API Gateway gives up on a request after 29 s; a request still open after this never got an answer.
const TIMEOUT_MS = 35000;

/** The sentence to show for any error thrown by ``call``. */
export function errorText(err) {
  return err instanceof ApiError ? err.message : "操作失败，请刷新后重试";
}

/** One path segment: percent-encoded, but ':' and '@' stay as they are (legal in a path, and
 * task ids contain ':'; chalice local does not decode escaped path parameters). */
export function seg(value) {
  return encodeURIComponent(value).replace(/%3A/gi, ":").replace(/%40/gi, "@");
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== null && v !== undefined && v !== "") params.set(k, v);
  }
  const qs = params.toString();
  return `${BASE}${path}${qs ? `?${qs}` : ""}`;
}

async function send(method, path, { query, body, headers, authToken } = {}) {
  const h = { Accept: "application/json", ...(headers || {}) };
  const bearer = authToken ?? token.get();
  if (bearer) h.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  let resp;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    resp = await fetch(url(path, query), {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
      signal: abort.signal,
    });
  } catch {
    const code = abort.signal.aborted ? "TIMEOUT" : "NETWORK";
    throw new ApiError(0, code, CLIENT_ERRORS[code]);
  } finally {
    clearTimeout(timer);
  }
  if (resp.ok) return resp;
  let payload = null;
  try {
    payload = await resp.json();
  } catch {
    payload = null;
  }
  const own = payload && typeof payload.code === "string" && typeof payload.message === "string" && payload.message;
  const err = own
    ? new ApiError(resp.status, payload.code, payload.message, payload.details)
    : new ApiError(resp.status, "UNREADABLE", CLIENT_ERRORS.UNREADABLE(resp.status));
  // The stored token stopped working (expired, revoked): back to sign-in, with the server's words.
  // A token being tried at sign-in (``authToken``) reports its error where it was typed instead.
  if (resp.status === 401 && authToken === undefined) {
    window.dispatchEvent(new CustomEvent("console:unauthenticated", { detail: err.message }));
  }
  throw err;
}

/** JSON request; resolves to the parsed body, rejects with ApiError. */
export async function call(method, path, options) {
  const resp = await send(method, path, options);
  return resp.status === 204 ? null : resp.json();
}

/**
 * A CSV download that needs the Authorization header: fetch, then save through a Blob link.
 * The server sends at most a few thousand rows per response and names the next part in
 * X-Next-Cursor; the parts are joined into one file (one BOM, one header row).
 */
export async function download(path, query, fallbackName) {
  const parts = [];
  let cursor;
  let first;
  do {
    const resp = await send("GET", path, { query: { ...query, cursor }, headers: { Accept: "text/csv" } });
    const text = (await resp.text()).replace(/^\uFEFF/, "");
    parts.push(first ? text.slice(text.indexOf("\n") + 1) : text);
    first = first || resp;
    cursor = resp.headers.get("X-Next-Cursor") || undefined;
  } while (cursor);
  const blob = new Blob(["\uFEFF", ...parts], { type: first.headers.get("Content-Type") || "text/csv" });
  const match = /filename="?([^";]+)"?/.exec(first.headers.get("Content-Disposition") || "");
  const name = match ? match[1] : fallbackName;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return name;
}

/** A fresh Idempotency-Key (works without a secure context, unlike crypto.randomUUID). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

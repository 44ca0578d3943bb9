// The admin API as the console calls it: every call carries the bearer token kept in
// sessionStorage (never in a URL or a cookie); a 401 clears it and calls the handler set with
// onUnauthorized (the app then shows the sign-in page with a message).

const KEY = 'surge.admin.token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/// An answer that is not 2xx: `status` (0: no answer), API.md's error `code` and `message`.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return this.status ? `${this.status} ${this.code}: ${this.message}` : this.message;
  }
}

let unauthorized = () => {};
export function onUnauthorized(f) {
  unauthorized = f;
}

/// Calls `method path`; resolves to {status, data} (data parsed from JSON when it is JSON),
/// rejects with an ApiError. `body`: an object (sent as JSON) or a string sent as `type`.
export async function api(method, path, { body, type = 'application/json', headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  const t = token.get();
  if (t) {
    h.Authorization = `Bearer ${t}`;
  }
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = type;
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: payload, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the node (${e.message})`);
  }
  const text = await resp.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  if (resp.status === 401) {
    token.clear();
    unauthorized();
    throw new ApiError(401, 'unauthorized', 'the admin token was refused');
  }
  if (!resp.ok) {
    const err = data && typeof data === 'object' ? data.error : null;
    throw new ApiError(resp.status, err?.code ?? `http_${resp.status}`, err?.message ?? String(text || resp.statusText));
  }
  return { status: resp.status, data };
}

export const get = (path) => api('GET', path).then((r) => r.data);

/// `path` with the non-empty entries of `params` as its query.
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') {
      q.set(k, v);
    }
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/// A fresh Idempotency-Key for one attempt: crypto.randomUUID where the page is a secure
/// context, else a version 4 UUID from crypto.getRandomValues.
export function newKey() {
  if (crypto.randomUUID) {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

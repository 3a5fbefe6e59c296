// Calls to the Flowledger API: the key from localStorage in the Authorization header, never in a URL.
const KEY = "flowledger.apiKey";
const TENANT = "flowledger.tenant";

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

export const savedKey = () => localStorage.getItem(KEY) || "";
export const savedTenant = () => localStorage.getItem(TENANT) || "";

export function saveKey(key, tenant) {
  localStorage.setItem(KEY, key);
  if (tenant) localStorage.setItem(TENANT, tenant);
  else localStorage.removeItem(TENANT);
}

export function headers(extra = {}) {
  return { Authorization: `Bearer ${savedKey()}`, ...extra };
}

function describe(detail) {
  if (detail == null) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  if (detail.message) return detail.problems ? `${detail.message}: ${detail.problems.join("; ")}` : detail.message;
  return JSON.stringify(detail);
}

/** GET or POST ``path``; resolves to the JSON body, rejects with ApiError (status, readable message). */
export async function api(path, { method = "GET", body, params, tenantParam = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((item) => url.searchParams.append(k, item));
    else if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  if (tenantParam && savedTenant()) url.searchParams.set("tenant", savedTenant());
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `cannot reach the API (${err.message})`, path);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const message = describe(data && typeof data === "object" ? data.detail : data) || response.statusText;
    throw new ApiError(response.status, message, path);
  }
  return data;
}

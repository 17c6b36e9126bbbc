// Calls to the gateway's API with the signed-in token. The token lives in
// sessionStorage only: never in a URL, never in a cookie.

const TOKEN = "orderflow.token";

export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
}

/** Who the token names (its claims, read without checking: the server checks). */
export function principal() {
  const value = token();
  if (!value) return null;
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return { subject: String(claims.sub ?? ""), role: String(claims.role ?? "customer") };
  } catch {
    return { subject: "", role: "unknown" };
  }
}

/** `method path` with the token; the parsed JSON body. A 401 signs out and throws
 *  SignedOut; any other non-2xx throws ApiError with the problem document. */
export async function call(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    signOut();
    throw new SignedOut((data && data.detail) || "your token was refused");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The one client module: every call the UI makes to Cairn. The calls themselves are generated
// from the operations cairn-core declares (api.gen.ts, `cargo wire`); this module keeps the two
// transports that carry them — HTTP under /api/v1 to `cairn serve` in a browser, the desktop
// app's one command in its window — and the errors they bring back.

import { client, type Client, type Method, type Transport } from "./api.gen";
import type { ErrorBody } from "./wire";

export class ApiError extends Error {
  /** For query errors: the 1-based column, what was expected there and what was found. */
  readonly column: number | null;
  readonly expected: string | null;
  readonly found: string | null;

  constructor(
    readonly code: string,
    message: string,
    details: { column?: number | null; expected?: string | null; found?: string | null } = {},
  ) {
    super(message);
    this.column = details.column ?? null;
    this.expected = details.expected ?? null;
    this.found = details.found ?? null;
  }

  static fromBody(body: Partial<ErrorBody> | null | undefined, fallback: string): ApiError {
    if (body && typeof body.message === "string") return new ApiError(body.code ?? "UNKNOWN", body.message, body);
    return new ApiError("UNKNOWN", fallback);
  }
}

/** The API: the generated calls, plus what depends on where the UI runs: the address MLflow
 *  clients log to, and where a browser downloads an artifact from. */
export type Api = Client & {
  trackingUri(): Promise<string>;
  artifactUrl(id: string, path: string): string;
};

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;
type Fields = Record<string, unknown>;

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

/** Fills the path parameters of `template` (`{id}`, `{*key}`) from `request`; returns the path
 *  and the fields left over. */
export function fillPath(template: string, request: object): [string, Fields] {
  const rest: Fields = { ...(request as Fields) };
  const path = template.replace(/\{(\*?)(\w+)\}/g, (_, star: string, name: string) => {
    const v = rest[name];
    delete rest[name];
    const text = v === undefined || v === null ? "" : String(v);
    return star ? encodePath(text) : encodeURIComponent(text);
  });
  return [path, rest];
}

/** A query string of the fields that have a value: lists comma-joined, booleans as text. */
export function queryString(fields: Fields): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return ApiError.fromBody(body, "");
  } catch {
    // Not JSON: fall through to the status line.
  }
  return new ApiError("HTTP_" + res.status, `${res.status} ${res.statusText}`);
}

/** Calls over HTTP, rooted at `base` (empty for the page's own origin). */
export function httpTransport(base = "", fetcher: Fetch = (i, init) => fetch(i, init)): Transport {
  return {
    async call<T>(_op: string, method: Method, template: string, request: object): Promise<T> {
      const [path, rest] = fillPath(template, request);
      const url = `${base}/api/v1${path}`;
      const hasBody = method === "PUT" || method === "POST";
      let res: Response;
      try {
        res = hasBody
          ? await fetcher(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(rest) })
          : await fetcher(url + queryString(rest), method === "GET" ? undefined : { method });
      } catch (e) {
        throw new ApiError("UNREACHABLE", `Cairn is not reachable: ${(e as Error).message}`);
      }
      if (!res.ok) throw await errorOf(res);
      return (await res.json()) as T;
    },
  };
}

/** The API over HTTP. */
export function httpApi(base = "", fetcher?: Fetch): Api {
  return {
    ...client(httpTransport(base, fetcher)),
    trackingUri: async () => base || (window.location.origin.startsWith("http") ? window.location.origin : ""),
    artifactUrl: (id, p) => `${base}/api/v1/runs/${encodeURIComponent(id)}/artifacts/${encodePath(p)}`,
  };
}

/** Numbers as the API sends them ("NaN" and the infinities are strings) to JS numbers. */
export function num(v: number | string | null | undefined): number {
  if (typeof v === "number") return v;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return NaN;
}

type Invoke = (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;

/** Calls through the desktop app's one command, which hands them to the same operations. */
export function tauriTransport(invoke: Invoke): Transport {
  return {
    async call<T>(op: string, _method: Method, _path: string, request: object): Promise<T> {
      try {
        return (await invoke("api", { op, request })) as T;
      } catch (e) {
        throw ApiError.fromBody(e as Partial<ErrorBody>, String(e));
      }
    },
  };
}

/** The API in the desktop window. Artifact downloads go to the in-process tracking server, whose
 *  address `trackingUri` gives (the window's own command). */
export function tauriApi(invoke: Invoke): Api {
  let server = "";
  return {
    ...client(tauriTransport(invoke)),
    trackingUri: async () => {
      server = (await invoke("tracking_uri")) as string;
      return server;
    },
    artifactUrl: (id, p) => `${server}/api/v1/runs/${encodeURIComponent(id)}/artifacts/${encodePath(p)}`,
  };
}

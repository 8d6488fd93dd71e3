// The one client module: every call the UI makes to Cairn goes through here, over HTTP to
// `cairn serve` (/api/v1) in a browser, or through Tauri commands in the desktop window.

import type { Bucket, ChartRequest, ChartView, ExperimentSummary, Info, RunView, SavedView, SearchPage, SearchRequest } from "./wire";

export type { ChartRequest, ChartView, SavedView, SearchRequest };

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** The 1-based column a query error points at, when it names one. */
  get column(): number | null {
    const m = /at column (\d+)/.exec(this.message);
    return m ? Number(m[1]) : null;
  }
}

export interface Api {
  info(): Promise<Info>;
  experiments(): Promise<ExperimentSummary[]>;
  search(req: SearchRequest): Promise<SearchPage>;
  run(id: string): Promise<RunView>;
  buckets(id: string, key: string, buckets: number, range?: [number, number]): Promise<Bucket[]>;
  artifactUrl(id: string, path: string): string;
  artifactText(id: string, path: string): Promise<string>;
  chart(req: ChartRequest): Promise<ChartView>;
  views(): Promise<SavedView[]>;
  saveView(view: SavedView): Promise<SavedView>;
  deleteView(name: string): Promise<void>;
}

type Params = Record<string, string | number | null | undefined>;
type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

function queryString(params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return new ApiError(body.code ?? "UNKNOWN", body.message);
  } catch {
    // Not JSON: fall through to the status line.
  }
  return new ApiError("HTTP_" + res.status, `${res.status} ${res.statusText}`);
}

/** The API over HTTP, rooted at `base` (empty for the page's own origin). */
export function httpApi(base = "", fetcher: Fetch = (i, init) => fetch(i, init)): Api {
  const path = (p: string) => `${base}/api/v1${p}`;
  async function send<T>(method: string, p: string, params: Params = {}, body?: unknown): Promise<T> {
    let res: Response;
    const init: RequestInit | undefined =
      method === "GET" ? undefined : { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) };
    try {
      res = await fetcher(path(p) + queryString(params), init);
    } catch (e) {
      throw new ApiError("UNREACHABLE", `Cairn is not reachable: ${(e as Error).message}`);
    }
    if (!res.ok) throw await errorOf(res);
    return (await res.json()) as T;
  }
  const get = <T>(p: string, params: Params = {}) => send<T>("GET", p, params);
  const enc = encodeURIComponent;
  return {
    info: () => get<Info>("/info"),
    experiments: () => get<ExperimentSummary[]>("/experiments"),
    search: (r) => get<SearchPage>("/search", { q: r.q, order: r.order, experiment: r.experiment, limit: r.limit, offset: r.offset }),
    run: (id) => get<RunView>(`/runs/${enc(id)}`),
    buckets: (id, key, n, range) =>
      get<Bucket[]>(`/runs/${enc(id)}/metrics/${key.split("/").map(enc).join("/")}`, { buckets: n, lo: range?.[0], hi: range?.[1] }),
    artifactUrl: (id, p) => path(`/runs/${enc(id)}/artifacts/${p.split("/").map(enc).join("/")}`),
    artifactText: async (id, p) => {
      const res = await fetcher(path(`/runs/${enc(id)}/artifacts/${p.split("/").map(enc).join("/")}`));
      if (!res.ok) throw await errorOf(res);
      return res.text();
    },
    chart: (r) =>
      get<ChartView>("/chart", {
        kind: r.kind,
        runs: r.runs.join(","),
        metric: r.metric,
        x: r.x,
        smooth: r.smooth || undefined,
        log: r.log ? "true" : undefined,
        group_by: r.group_by,
        lo: r.lo,
        hi: r.hi,
        fields: r.fields?.join(","),
        width: r.width,
        height: r.height,
        dark: r.dark ? "true" : undefined,
      }),
    views: () => get<SavedView[]>("/views"),
    saveView: (v) => send<SavedView>("PUT", `/views/${enc(v.name)}`, {}, { query: v.query, order: v.order, columns: v.columns }),
    deleteView: async (name) => {
      await send<unknown>("DELETE", `/views/${enc(name)}`);
    },
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

/** The API through the desktop app's commands (each a one-line adapter over cairn-core).
 *  Artifact downloads go to the in-process tracking server, whose address `info` returns. */
export function tauriApi(invoke: Invoke): Api {
  let server = "";
  const call = async <T>(cmd: string, args?: Record<string, unknown>): Promise<T> => {
    try {
      return (await invoke(cmd, args)) as T;
    } catch (e) {
      const body = e as { code?: string; message?: string };
      throw new ApiError(body?.code ?? "UNKNOWN", body?.message ?? String(e));
    }
  };
  return {
    info: async () => {
      const i = await call<Info & { tracking_uri: string }>("info");
      server = i.tracking_uri;
      return i;
    },
    experiments: () => call("experiments"),
    search: (req) => call("search", { req }),
    run: (id) => call("run", { id }),
    buckets: (id, key, buckets, range) => call("buckets", { id, key, buckets, range: range ?? null }),
    artifactUrl: (id, p) => `${server}/api/v1/runs/${encodeURIComponent(id)}/artifacts/${p.split("/").map(encodeURIComponent).join("/")}`,
    artifactText: (id, path) => call("artifact_text", { id, path }),
    chart: (req) => call("chart", { req }),
    views: () => call("views"),
    saveView: (view) => call("save_view", { view }),
    deleteView: (name) => call("delete_view", { name }),
  };
}

import { describe, expect, it } from "vitest";

import { OPERATIONS } from "./api.gen";
import { ApiError, fillPath, httpApi, num, queryString, tauriApi } from "./api";

function fakeFetch(status: number, body: unknown, seen: string[]) {
  return async (url: string) => {
    seen.push(url);
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  };
}

describe("the HTTP transport", () => {
  it("builds API URLs with encoded queries and leaves out empty parameters", async () => {
    const seen: string[] = [];
    const api = httpApi("http://127.0.0.1:5000", fakeFetch(200, { total: 0, next_offset: null, runs: [] }, seen));
    await api.search({ q: "params.optimizer = 'adam'", order: "metrics.acc DESC", limit: 100, experiment: "", mine: true });
    expect(seen[0]).toBe("http://127.0.0.1:5000/api/v1/search?q=params.optimizer+%3D+%27adam%27&order=metrics.acc+DESC&limit=100&mine=true");
    await api.buckets({ id: "abc", key: "system/cpu util", buckets: 500, lo: 10, hi: 20 });
    expect(seen[1]).toBe("http://127.0.0.1:5000/api/v1/runs/abc/buckets/system/cpu%20util?buckets=500&lo=10&hi=20");
  });

  it("fills path parameters and keeps the other fields for the query", () => {
    expect(fillPath("/runs/{id}/text/{*path}", { id: "a b", path: "logs/out put.log", tail: true })).toEqual([
      "/runs/a%20b/text/logs/out%20put.log",
      { tail: true },
    ]);
    expect(queryString({ runs: ["a", "b"], log: false, lo: 0, q: null })).toBe("?runs=a%2Cb&lo=0");
  });

  it("asks for charts with the runs and axes in the query, and saves views with PUT", async () => {
    const seen: [string, RequestInit | undefined][] = [];
    const api = httpApi("", async (url: string, init?: RequestInit) => {
      seen.push([url, init]);
      return new Response(JSON.stringify({ name: "good", query: "q", columns: [] }), { status: 200 });
    });
    await api.chart({ runs: ["a", "b"], metric: "train/loss", smooth: 0.6, log: true, lo: 10, hi: 20, width: 600, height: 300 });
    expect(seen[0][0]).toBe("/api/v1/chart?runs=a%2Cb&metric=train%2Floss&smooth=0.6&log=true&lo=10&hi=20&width=600&height=300");
    await api.chart({ kind: "parallel", runs: ["a"], fields: ["params.lr", "metrics.acc"] });
    expect(seen[1][0]).toBe("/api/v1/chart?kind=parallel&runs=a&fields=params.lr%2Cmetrics.acc");
    await api.saveView({ name: "good runs", query: "metrics.acc > 0.9", columns: ["params.lr"] });
    expect(seen[2][0]).toBe("/api/v1/views/good%20runs");
    expect(seen[2][1]?.method).toBe("PUT");
    expect(new Headers(seen[2][1]?.headers).get("content-type")).toBe("application/json");
    expect(JSON.parse(String(seen[2][1]?.body))).toEqual({ query: "metrics.acc > 0.9", columns: ["params.lr"] });
    await api.deleteView({ name: "good runs" });
    expect(seen[3][0]).toBe("/api/v1/views/good%20runs");
    expect(seen[3][1]?.method).toBe("DELETE");
  });

  it("turns {code, message} error bodies into ApiErrors with the column as a field", async () => {
    const body = { code: "INVALID_ARGUMENT", message: "invalid query: unexpected ')' at column 17, expected a value", column: 17, expected: "a value", found: "')'" };
    const api = httpApi("", fakeFetch(400, body, []));
    const err = await api.search({ q: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.column).toBe(17);
    expect(err.expected).toBe("a value");
  });

  it("reports a non-JSON failure by its status", async () => {
    const api = httpApi("", fakeFetch(502, "Bad Gateway", []));
    const err = await api.experiments().catch((e) => e);
    expect(err.code).toBe("HTTP_502");
  });

  it("reports an unreachable server", async () => {
    const api = httpApi("", async () => {
      throw new TypeError("Failed to fetch");
    });
    const err = await api.info().catch((e) => e);
    expect(err.code).toBe("UNREACHABLE");
  });

  it("reads non-finite numbers", () => {
    expect(num("NaN")).toBeNaN();
    expect(num("Infinity")).toBe(Infinity);
    expect(num("-Infinity")).toBe(-Infinity);
    expect(num(0.5)).toBe(0.5);
  });
});

describe("the desktop transport", () => {
  it("passes every operation to the window's one command and maps {code, message} errors", async () => {
    const calls: [string, unknown][] = [];
    const api = tauriApi(async (cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "tracking_uri") return "http://127.0.0.1:5999";
      if ((args as { op: string }).op === "run") throw { code: "NOT_FOUND", message: "no run id starts with 'zz'" };
      return { total: 0, next_offset: null, runs: [] };
    });
    await api.search({ q: "metrics.acc > 0.9", limit: 10 });
    expect(calls[0]).toEqual(["api", { op: "search", request: { q: "metrics.acc > 0.9", limit: 10 } }]);
    const err = await api.run({ id: "zz" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("NOT_FOUND");
    expect(await api.trackingUri()).toBe("http://127.0.0.1:5999");
    expect(api.artifactUrl("abc", "logs/output.log")).toBe("http://127.0.0.1:5999/api/v1/runs/abc/artifacts/logs/output.log");
  });

  it("has a call for every declared operation", () => {
    const api = tauriApi(async () => null) as unknown as Record<string, unknown>;
    const camel = (n: string) => n.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
    for (const op of OPERATIONS) expect(typeof api[camel(op.name)]).toBe("function");
  });
});

import { describe, expect, it } from "vitest";

import { ApiError, httpApi, num, tauriApi } from "./api";

function fakeFetch(status: number, body: unknown, seen: string[]) {
  return async (url: string) => {
    seen.push(url);
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  };
}

describe("the client module", () => {
  it("builds API URLs with encoded queries and leaves out empty parameters", async () => {
    const seen: string[] = [];
    const api = httpApi("http://127.0.0.1:5000", fakeFetch(200, { total: 0, next_offset: null, runs: [] }, seen));
    await api.search({ q: "params.optimizer = 'adam'", order: "metrics.acc DESC", limit: 100, experiment: "" });
    expect(seen[0]).toBe("http://127.0.0.1:5000/api/v1/search?q=params.optimizer+%3D+%27adam%27&order=metrics.acc+DESC&limit=100");
    await api.buckets("abc", "system/cpu", 500, [10, 20]);
    expect(seen[1]).toBe("http://127.0.0.1:5000/api/v1/runs/abc/metrics/system/cpu?buckets=500&lo=10&hi=20");
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
    expect(JSON.parse(String(seen[2][1]?.body))).toEqual({ query: "metrics.acc > 0.9", columns: ["params.lr"] });
    await api.deleteView("good runs");
    expect(seen[3][1]?.method).toBe("DELETE");
  });

  it("turns {code, message} error bodies into ApiErrors with the column", async () => {
    const api = httpApi("", fakeFetch(400, { code: "INVALID_ARGUMENT", message: "unexpected ')' at column 17, expected a value" }, []));
    const err = await api.search({ q: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.column).toBe(17);
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
  it("calls the window's commands with their arguments and maps {code, message} errors", async () => {
    const calls: [string, unknown][] = [];
    const api = tauriApi(async (cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "run") throw { code: "NOT_FOUND", message: "no run id starts with 'zz'" };
      if (cmd === "info") return { version: "0.1.0", workspace: "/w", user: "u", demo: true, tracking_uri: "http://127.0.0.1:5999" };
      return { total: 0, next_offset: null, runs: [] };
    });
    await api.search({ q: "metrics.acc > 0.9", limit: 10 });
    expect(calls[0]).toEqual(["search", { req: { q: "metrics.acc > 0.9", limit: 10 } }]);
    const err = await api.run("zz").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("NOT_FOUND");
    await api.info();
    expect(api.artifactUrl("abc", "logs/output.log")).toBe("http://127.0.0.1:5999/api/v1/runs/abc/artifacts/logs/output.log");
  });
});

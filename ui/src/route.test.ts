import { describe, expect, it } from "vitest";

import { parseRoute } from "./route";

describe("routes", () => {
  it("are Cairn's own pages", () => {
    expect(parseRoute("")).toEqual({ page: "catalog" });
    expect(parseRoute("#/")).toEqual({ page: "catalog" });
    expect(parseRoute("#/run/01a2ff")).toEqual({ page: "run", id: "01a2ff" });
    expect(parseRoute("#/compare/a,b,,c")).toEqual({ page: "compare", ids: ["a", "b", "c"] });
    expect(parseRoute("#/cost")).toEqual({ page: "cost" });
    expect(parseRoute("#/actions")).toEqual({ page: "actions" });
    expect(parseRoute("#/models")).toEqual({ page: "models" });
    expect(parseRoute("#/models/churn%2Fv2")).toEqual({ page: "model", name: "churn/v2" });
    expect(parseRoute("#/notebooks")).toEqual({ page: "notebooks" });
    expect(parseRoute("#/notebooks/0193ab")).toEqual({ page: "notebook", id: "0193ab" });
    expect(parseRoute("#/team")).toEqual({ page: "team" });
  });

  it("open the links the MLflow client prints", () => {
    const run = "01a2421eec9f739fa440e312c2b645d7";
    expect(parseRoute(`#/experiments/0/runs/${run}`)).toEqual({ page: "run", id: run });
    expect(parseRoute(`#/experiments/01a2421f03a070c2a20bde4573ab8eac/runs/${run}`)).toEqual({ page: "run", id: run });
    expect(parseRoute("#/experiments/0")).toEqual({ page: "catalog", experiment: "0" });
    expect(parseRoute("#/experiments/my%20exp")).toEqual({ page: "catalog", experiment: "my exp" });
  });
});

// The hash routes of the UI. Besides Cairn's own (`#/run/ID`, `#/compare/A,B`, `#/cost`, `#/actions`,
// `#/models`, `#/models/NAME`, `#/notebooks`, `#/notebooks/ID`, `#/team`), the links the MLflow client prints open here too:
// `#/experiments/EXP/runs/RUN` is the run, `#/experiments/EXP`
// the catalog of that experiment (MLflow's "0" is the workspace's default experiment).

export type Route =
  | { page: "catalog"; experiment?: string }
  | { page: "run"; id: string }
  | { page: "compare"; ids: string[] }
  | { page: "cost" }
  | { page: "models" }
  | { page: "model"; name: string }
  | { page: "notebooks" }
  | { page: "notebook"; id: string }
  | { page: "actions" }
  | { page: "team" };

export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, "")
    .split(/[?]/)[0]
    .split("/")
    .map((p) => decodeURIComponent(p));
  const [head, a, b, c] = parts;
  if (head === "run" && a) return { page: "run", id: a };
  if (head === "cost") return { page: "cost" };
  if (head === "notebooks") return a ? { page: "notebook", id: a } : { page: "notebooks" };
  if (head === "actions") return { page: "actions" };
  if (head === "team") return { page: "team" };
  if (head === "models") return a ? { page: "model", name: a } : { page: "models" };
  if (head === "compare" && a) return { page: "compare", ids: a.split(",").filter(Boolean) };
  if (head === "experiments" && a) {
    if (b === "runs" && c) return { page: "run", id: c };
    return { page: "catalog", experiment: a };
  }
  return { page: "catalog" };
}

// What differs between runs: the rows of a params or lineage comparison.

/** Rows of a diff: every key any run has, with each run's value and whether they differ. */
export function diffRows(values: Record<string, string>[]): { key: string; values: (string | undefined)[]; differs: boolean }[] {
  const keys = [...new Set(values.flatMap((v) => Object.keys(v)))].sort();
  return keys.map((key) => {
    const vs = values.map((v) => v[key]);
    return { key, values: vs, differs: new Set(vs.map((v) => v ?? "\u0000")).size > 1 };
  });
}


/** What a run is called in a comparison's tables and legends: its name, then — only where two
 *  runs share it — its experiment, then the end of its id (its start is a timestamp that runs of
 *  one sweep share), so runs named alike (every sweep's `trial-0333`) stay apart. The charts'
 *  legends, drawn by cairn-core, follow the same rule. */
export function runLabels(runs: { id: string; name: string; experiment_name: string }[]): string[] {
  const count = (labels: string[]) => labels.reduce((m, l) => m.set(l, (m.get(l) ?? 0) + 1), new Map<string, number>());
  let labels = runs.map((r) => r.name);
  let seen = count(labels);
  labels = labels.map((l, i) => (seen.get(l)! > 1 ? `${l} · ${runs[i].experiment_name}` : l));
  seen = count(labels);
  return labels.map((l, i) => (seen.get(l)! > 1 ? `${l} · …${runs[i].id.slice(-6)}` : l));
}

/** A long hexadecimal value (a digest, a commit) cut to its first 12 digits, keeping any
 *  `algo:` prefix and suffix such as " (dirty)"; other values unchanged. The full value goes in
 *  the cell's title. */
export function shortValue(v: string): string {
  return v.replace(/\b((?:[a-z0-9]+:)?)([0-9a-f]{16,})\b/gi, (_, prefix: string, hex: string) => `${prefix}${hex.slice(0, 12)}…`);
}

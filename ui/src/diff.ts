// What differs between runs: the rows of a params or lineage comparison.

/** Rows of a diff: every key any run has, with each run's value and whether they differ. */
export function diffRows(values: Record<string, string>[]): { key: string; values: (string | undefined)[]; differs: boolean }[] {
  const keys = [...new Set(values.flatMap((v) => Object.keys(v)))].sort();
  return keys.map((key) => {
    const vs = values.map((v) => v[key]);
    return { key, values: vs, differs: new Set(vs.map((v) => v ?? "\u0000")).size > 1 };
  });
}


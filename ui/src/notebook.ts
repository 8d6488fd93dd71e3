// What changed in a notebook since this browser last looked: the lines of the text now that
// the text then did not hold (a teammate's words that synced in, or another window's). Kept
// per notebook in localStorage; cheap (a set of lines), not a diff.

/** 0-based indexes of the lines of `now` that `then` did not hold (as many times). */
export function changedLines(then: string | null, now: string): number[] {
  if (then === null) return [];
  const seen = new Map<string, number>();
  for (const line of then.split("\n")) seen.set(line, (seen.get(line) ?? 0) + 1);
  const out: number[] = [];
  now.split("\n").forEach((line, i) => {
    const left = seen.get(line) ?? 0;
    if (left > 0) seen.set(line, left - 1);
    else if (line.trim() !== "") out.push(i);
  });
  return out;
}

const KEY = "cairn.notebook.seen.";

export function lastSeen(id: string): string | null {
  return localStorage.getItem(KEY + id);
}

export function markSeen(id: string, text: string) {
  try {
    localStorage.setItem(KEY + id, text);
  } catch {
    // A full storage only loses the highlight.
  }
}

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

// Live editing: the editor saves a moment after typing stops and follows what teammates write
// (their edits arrive through sync and show within a poll). A save answers the server's merge of
// what was sent with whatever synced in meanwhile; typing that happened while the save was in
// flight is replayed on that merge, and the caret follows the text around it.

/** The one region where `a` and `b` differ: `a.slice(at, at + removed)` became `inserted`. */
export function diffRegion(a: string, b: string): { at: number; removed: number; inserted: string } {
  let p = 0;
  const max = Math.min(a.length, b.length);
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  let s = 0;
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  return { at: p, removed: a.length - p - s, inserted: b.slice(p, b.length - s) };
}

/** Where position `pos` of `before` is in `after` (one edit apart): before the edit it stays,
 * after it it moves by what the edit added; inside it, it goes to the edit's end. */
export function mapPosition(before: string, after: string, pos: number): number {
  const d = diffRegion(before, after);
  if (pos <= d.at) return pos;
  if (pos >= d.at + d.removed) return pos + d.inserted.length - d.removed;
  return d.at + d.inserted.length;
}

/** The user's typing since `sent` (the editor now holds `current`), replayed on `merged` (the
 * server's merge of `sent` with a teammate's edits), so neither is lost. */
export function rebase(sent: string, current: string, merged: string): string {
  if (current === sent) return merged;
  if (merged === sent) return current;
  const mine = diffRegion(sent, current);
  const at = mapPosition(sent, merged, mine.at);
  const end = Math.max(at, mapPosition(sent, merged, mine.at + mine.removed));
  return merged.slice(0, at) + mine.inserted + merged.slice(end);
}

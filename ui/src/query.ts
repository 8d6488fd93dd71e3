// The query bar's logic: which field names and values to offer while typing, and where an error
// points. Pure functions, so they are tested without a browser.

export const ATTRIBUTE_FIELDS = [
  "attributes.status",
  "attributes.run_name",
  "attributes.user_id",
  "attributes.start_time",
  "attributes.end_time",
  "datasets.digest",
  "datasets.name",
];

export interface Vocabulary {
  params: string[];
  metrics: string[];
  tags: string[];
  /** Known values per field, e.g. "params.optimizer" → ["adam", "sgd"]. */
  values: Record<string, string[]>;
}

export interface Completion {
  /** Text to insert in place of the word being typed. */
  insert: string;
  /** What is shown in the list. */
  label: string;
}

/** The word under the cursor: its start offset and text. */
export function currentWord(text: string, cursor: number): { start: number; word: string } {
  let start = cursor;
  while (start > 0 && !/[\s()]/.test(text[start - 1])) start--;
  return { start, word: text.slice(start, cursor) };
}

function fieldsOf(v: Vocabulary): string[] {
  return [
    ...v.metrics.map((k) => `metrics.${quoteKey(k)}`),
    ...v.params.map((k) => `params.${quoteKey(k)}`),
    ...v.tags.map((k) => `tags.${quoteKey(k)}`),
    ...ATTRIBUTE_FIELDS,
  ];
}

/** A key that is not a plain identifier is written in backticks, as MLflow's grammar wants. */
export function quoteKey(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_./-]*$/.test(k) ? k : "`" + k + "`";
}

/** What to offer at `cursor`: field names while typing a field, values after `field = '`. */
export function complete(text: string, cursor: number, v: Vocabulary, max = 12): Completion[] {
  const before = text.slice(0, cursor);
  const valueCtx = /([A-Za-z_]+\.(?:`[^`]+`|[A-Za-z0-9_./-]+))\s*(=|!=|LIKE|ILIKE)\s*'([^']*)$/i.exec(before);
  if (valueCtx) {
    const field = valueCtx[1].replace(/`/g, "");
    const typed = valueCtx[3];
    return (v.values[field] ?? [])
      .filter((x) => x.toLowerCase().startsWith(typed.toLowerCase()))
      .slice(0, max)
      .map((x) => ({ insert: x + "'", label: x }));
  }
  const { word } = currentWord(text, cursor);
  if (word.length === 0) return [];
  const lw = word.toLowerCase();
  return fieldsOf(v)
    .filter((f) => f.toLowerCase().startsWith(lw) && f.length > word.length)
    .slice(0, max)
    .map((f) => ({ insert: f, label: f }));
}

/** Replaces the word under the cursor (or, for values, the typed part) with a completion. */
export function apply(text: string, cursor: number, c: Completion): { text: string; cursor: number } {
  const before = text.slice(0, cursor);
  const valueCtx = /'([^']*)$/.exec(before);
  const start = valueCtx && c.insert.endsWith("'") ? cursor - valueCtx[1].length : currentWord(text, cursor).start;
  const next = text.slice(0, start) + c.insert + text.slice(cursor);
  return { text: next, cursor: start + c.insert.length };
}

/** Field names and values seen in a page of runs: what completion offers. */
export function vocabularyOf(runs: { params: Record<string, string>; tags: Record<string, string>; metrics: Record<string, unknown> }[]): Vocabulary {
  const params = new Set<string>();
  const metrics = new Set<string>();
  const tags = new Set<string>();
  const values: Record<string, Set<string>> = {};
  const add = (field: string, value: string) => {
    if (value.length > 60) return;
    (values[field] ??= new Set()).add(value);
  };
  for (const r of runs) {
    for (const [k, val] of Object.entries(r.params)) {
      params.add(k);
      add(`params.${k}`, val);
    }
    for (const [k, val] of Object.entries(r.tags)) {
      tags.add(k);
      add(`tags.${k}`, val);
    }
    for (const k of Object.keys(r.metrics)) metrics.add(k);
  }
  const sorted = (s: Set<string>) => [...s].sort();
  const vals: Record<string, string[]> = {};
  for (const [k, s] of Object.entries(values)) {
    if (s.size <= 50) vals[k] = sorted(s);
  }
  return { params: sorted(params), metrics: sorted(metrics), tags: sorted(tags), values: vals };
}

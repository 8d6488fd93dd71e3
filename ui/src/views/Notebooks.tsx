// Notebooks: the team's Markdown documents. The list (newest edit first) with a form to start
// one, and a notebook's page: a textarea and, beside it, the preview the server renders with
// its embeds (runs, models, queries, charts) drawn. The editor saves a moment after typing stops
// (or at once with Save), writing only the difference from the version it was typed on, so a
// teammate's edits that synced in meanwhile stay; it follows teammates' edits as they arrive.
// Lines that changed since this browser last looked are listed above the editor.

import { useEffect, useRef, useState } from "preact/hooks";

import { time } from "../format";
import { changedLines, lastSeen, mapPosition, markSeen, rebase } from "../notebook";
import { api, go } from "../state";
import type { Notebook, NotebookHitView, NotebookMeta } from "../wire";

export function Notebooks() {
  const [list, setList] = useState<NotebookMeta[] | null>(null);
  const [hits, setHits] = useState<NotebookHitView[] | null>(null);
  const [query, setQuery] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [title, setTitle] = useState("");
  useEffect(() => {
    api.notebooks({}).then(setList).catch((e) => setError(e.message));
  }, []);
  // A search as you type (a moment after typing stops): title, tags, owners and text.
  useEffect(() => {
    if (!query.trim()) {
      setHits(null);
      return;
    }
    const t = window.setTimeout(() => {
      api
        .notebookSearch({ q: query })
        .then((h) => {
          setHits(h);
          setError(null);
        })
        .catch((e) => setError(e.message));
    }, 200);
    return () => window.clearTimeout(t);
  }, [query]);
  const create = (e: Event) => {
    e.preventDefault();
    api
      .notebookCreate({ title, text: null, tags: null, owners: null, experiment: null })
      .then((nb) => go(`#/notebooks/${nb.id}`))
      .catch((err) => setError(err.message));
  };
  if (!list && !error) return <div class="page loading">loading notebooks…</div>;
  return (
    <div class="page notebooks">
      <nav class="crumbs"><a href="#/">Catalog</a> / <strong>Notebooks</strong></nav>
      {error && <p class="error">{error}</p>}
      <form onSubmit={create} class="nb-new">
        <input data-testid="nb-title" placeholder="New notebook title" value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        <button type="submit" data-testid="nb-create" disabled={!title.trim()}>Create</button>
      </form>
      {list && list.length > 0 && (
        <input class="nb-search" type="search" data-testid="nb-search" placeholder="Search notebooks: words, &quot;a phrase&quot;, tag:, owner:, title:" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
      )}
      {hits && hits.length === 0 && <p class="dim">No notebook matches.</p>}
      {hits && hits.length > 0 && (
        <table class="kv" data-testid="nb-hits">
          <thead><tr><th>title</th><th>tags</th><th>updated</th><th>matched</th></tr></thead>
          <tbody>
            {hits.map((h) => (
              <tr key={h.id}>
                <td><a href={`#/notebooks/${h.id}`}>{h.title}</a></td>
                <td>{h.tags.map((t) => <span key={t} class="tag">{t}</span>)}</td>
                <td>{time(h.updated_ms)}</td>
                <td class="dim">{h.snippet}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list && list.length === 0 && <p class="dim">No notebooks yet.</p>}
      {!hits && list && list.length > 0 && (
        <table class="kv" data-testid="notebooks">
          <thead><tr><th>title</th><th>owners</th><th>tags</th><th>updated</th><th>by</th></tr></thead>
          <tbody>
            {list.map((m) => (
              <tr key={m.id}>
                <td><a href={`#/notebooks/${m.id}`}>{m.title}</a></td>
                <td>{m.owners.join(", ")}</td>
                <td>{m.tags.map((t) => <span key={t} class="tag">{t}</span>)}</td>
                <td>{time(m.updated_ms)}</td>
                <td>{m.updated_by}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** How long typing must pause before the editor saves. */
const SAVE_AFTER_MS = 300;
/** How often an open notebook looks for a teammate's edits (a cheap listing; the text is
 * read only when the notebook changed). */
const FOLLOW_EVERY_MS = 500;

export function NotebookPage({ id }: { id: string }) {
  const [nb, setNb] = useState<Notebook | null>(null);
  const [text, setText] = useState("");
  const [html, setHtml] = useState("");
  const [changed, setChanged] = useState<number[]>([]);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | undefined>(undefined);
  const saveTimer = useRef<number | undefined>(undefined);
  // What the callbacks below read as it is now, not as it was when they were made.
  const nbRef = useRef<Notebook | null>(null);
  const textRef = useRef("");
  const saving = useRef(false);
  const area = useRef<HTMLTextAreaElement | null>(null);
  nbRef.current = nb;
  textRef.current = text;

  /** Puts `next` in the editor, keeping the caret where it was in the text around it. */
  const replace = (next: string) => {
    const el = area.current;
    const before = textRef.current;
    if (el && document.activeElement === el && before !== next) {
      const start = mapPosition(before, next, el.selectionStart);
      const end = mapPosition(before, next, el.selectionEnd);
      textRef.current = next;
      setText(next);
      requestAnimationFrame(() => el.setSelectionRange(start, end));
    } else {
      textRef.current = next;
      setText(next);
    }
  };

  useEffect(() => {
    api
      .notebook({ id })
      .then((n) => {
        setNb(n);
        setText(n.text);
        setChanged(changedLines(lastSeen(n.id), n.text));
        markSeen(n.id, n.text);
      })
      .catch((e) => setError(e.message));
  }, [id]);

  // The preview follows the text, rendered by the server a moment after typing stops.
  useEffect(() => {
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      api.notebookRender({ text }).then((r) => setHtml(r.html)).catch((e) => setError(e.message));
    }, 250);
    return () => window.clearTimeout(timer.current);
  }, [text]);

  const save = () => {
    const base = nbRef.current;
    if (!base || saving.current || textRef.current === base.text) return;
    const sent = textRef.current;
    saving.current = true;
    setStatus("saving…");
    api
      .notebookEdit({
        id: base.id, text: sent, base: base.heads, title: null, add_tags: null, remove_tags: null,
        add_owners: null, remove_owners: null, experiment: null,
      })
      .then((after) => {
        saving.current = false;
        nbRef.current = after;
        setNb(after);
        // Typing that happened while the save was in flight is replayed on the merge.
        replace(rebase(sent, textRef.current, after.text));
        markSeen(after.id, after.text);
        setStatus(`saved ${time(after.updated_ms)}`);
      })
      .catch((e) => {
        saving.current = false;
        setStatus(e.message);
      });
  };

  // Saves a moment after typing stops (and again if more was typed during a save).
  useEffect(() => {
    window.clearTimeout(saveTimer.current);
    if (!nb || text === nb.text) return;
    saveTimer.current = window.setTimeout(save, SAVE_AFTER_MS);
    return () => window.clearTimeout(saveTimer.current);
  }, [text, nb]);

  // Follows teammates: when the notebook changed elsewhere (synced in, or another window) and
  // nothing typed here is waiting, the editor takes the new text.
  useEffect(() => {
    const tick = window.setInterval(() => {
      const held = nbRef.current;
      if (!held || saving.current || textRef.current !== held.text) return;
      api
        .notebooks({})
        .then((list) => {
          const meta = list.find((m) => m.id === held.id);
          if (!meta || (meta.updated_ms === held.updated_ms && meta.bytes === held.bytes)) return;
          return api.notebook({ id: held.id }).then((n) => {
            const now = nbRef.current;
            if (!now || saving.current || textRef.current !== now.text) return;
            nbRef.current = n;
            setNb(n);
            replace(n.text);
            markSeen(n.id, n.text);
          });
        })
        .catch(() => {
          // A missed look is retried at the next tick.
        });
    }, FOLLOW_EVERY_MS);
    return () => window.clearInterval(tick);
  }, [id]);

  if (error) return <div class="page error">{error}</div>;
  if (!nb) return <div class="page loading">loading the notebook…</div>;
  const lines = nb.text.split("\n");
  return (
    <div class="page notebook">
      <nav class="crumbs"><a href="#/">Catalog</a> / <a href="#/notebooks">Notebooks</a> / <strong>{nb.title}</strong></nav>
      <p class="dim">by {nb.owners.join(", ")} · updated {time(nb.updated_ms)} by {nb.updated_by}</p>
      {changed.length > 0 && (
        <div class="nb-changed" data-testid="nb-changed">
          <strong>Changed since you last looked:</strong>
          <ul>{changed.slice(0, 20).map((i) => <li key={i}><code>{lines[i]}</code></li>)}</ul>
        </div>
      )}
      <div class="nb-panes">
        <div class="nb-editor">
          <textarea ref={area} data-testid="nb-text" value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
          <div>
            <button data-testid="nb-save" onClick={save} disabled={text === nb.text}>Save</button>
            {status && <span class="dim" data-testid="nb-status"> {status}</span>}
          </div>
        </div>
        {/* The server escapes everything from the text; only its own markup is here. */}
        <article class="nb-preview" data-testid="nb-preview" dangerouslySetInnerHTML={{ __html: html }} />
      </div>
    </div>
  );
}

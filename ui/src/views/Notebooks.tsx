// Notebooks: the team's Markdown documents. The list (newest edit first) with a form to start
// one, and a notebook's page: a textarea and, beside it, the preview the server renders with
// its embeds (runs, models, queries, charts) drawn; saving writes only the difference from the
// version opened, so a teammate's edits that synced in meanwhile stay. Lines that changed since
// this browser last looked are listed above the editor.

import { useEffect, useRef, useState } from "preact/hooks";

import { time } from "../format";
import { changedLines, lastSeen, markSeen } from "../notebook";
import { api, go } from "../state";
import type { Notebook, NotebookMeta } from "../wire";

export function Notebooks() {
  const [list, setList] = useState<NotebookMeta[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [title, setTitle] = useState("");
  useEffect(() => {
    api.notebooks({}).then(setList).catch((e) => setError(e.message));
  }, []);
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
      {list && list.length === 0 && <p class="dim">No notebooks yet.</p>}
      {list && list.length > 0 && (
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

export function NotebookPage({ id }: { id: string }) {
  const [nb, setNb] = useState<Notebook | null>(null);
  const [text, setText] = useState("");
  const [html, setHtml] = useState("");
  const [changed, setChanged] = useState<number[]>([]);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | undefined>(undefined);

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
    if (!nb) return;
    setStatus("saving…");
    api
      .notebookEdit({
        id: nb.id, text, base: nb.heads, title: null, add_tags: null, remove_tags: null,
        add_owners: null, remove_owners: null, experiment: null,
      })
      .then((after) => {
        setNb(after);
        setText(after.text);
        markSeen(after.id, after.text);
        setStatus(`saved ${time(after.updated_ms)}`);
      })
      .catch((e) => setStatus(e.message));
  };

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
          <textarea data-testid="nb-text" value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
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

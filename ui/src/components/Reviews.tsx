// Structured reviews: the reviews of a run or an experiment (objective, method, result,
// confidence, decision, next actions with their states, free text, the template's extra fields),
// the form that writes one (fields from the team's template, required ones marked, every missing
// one named before any call, the server's refusal shown), and the open next actions per owner.

import { useEffect, useState } from "preact/hooks";

import { time } from "../format";
import { EMPTY_FORM, STANDARD, confidenceText, openActionsByOwner, reviewRequest, type ReviewForm } from "../reviews";
import { api } from "../state";
import type { ActionView, ReviewTemplate, ReviewView, TemplateView } from "../wire";

const value = (e: Event) => (e.target as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement).value;

function ActionRow({ review, action, onChange }: { review: ReviewView; action: ActionView; onChange: () => void }) {
  const [problem, setProblem] = useState<string | null>(null);
  const set = (state: "done" | "dropped" | "open") =>
    api.setActionState({ id: review.review.id, action: action.index, state, note: null }).then(onChange).catch((e) => setProblem(e.message));
  return (
    <li class={`action state-${action.state}`} data-testid="review-action" data-state={action.state}>
      <span class="badge">{action.state}</span> <strong>{action.owner}</strong>: {action.text}
      {action.state !== "open" && action.changed_by && <span class="dim"> — {action.state} by {action.changed_by} {action.changed_ms ? time(action.changed_ms) : ""}</span>}
      {action.state === "open" ? (
        <>
          {" "}<button class="link" onClick={() => set("done")} data-testid="action-done">done</button>{" "}
          <button class="link" onClick={() => set("dropped")}>drop</button>
        </>
      ) : (
        <>{" "}<button class="link" onClick={() => set("open")}>reopen</button></>
      )}
      {problem && <div class="error">{problem}</div>}
    </li>
  );
}

export function ReviewCard({ v, onChange }: { v: ReviewView; onChange: () => void }) {
  const r = v.review;
  return (
    <article class="review" data-testid="review" data-decision={r.decision ?? ""}>
      <header>
        {r.decision && <span class={`badge decision-${r.decision}`}>{r.decision}</span>}{" "}
        {r.confidence && <span class="badge">confidence {confidenceText(r.confidence)}</span>}{" "}
        <span class="dim">by {v.author} · {time(r.at_ms)} · {r.runs.length > 0 ? `${r.runs.length} run${r.runs.length === 1 ? "" : "s"}` : `experiment ${v.experiment_name ?? ""}`}</span>
      </header>
      <dl class="kv">
        {r.objective && (<><dt>objective</dt><dd data-testid="review-objective">{r.objective}</dd></>)}
        {r.method && (<><dt>method</dt><dd>{r.method}</dd></>)}
        {r.result && (<><dt>result</dt><dd>{r.result}</dd></>)}
        {Object.entries(r.extra).map(([k, x]) => (<><dt>{k}</dt><dd>{x}</dd></>))}
      </dl>
      {r.text && <p class="review-text">{r.text}</p>}
      {v.actions.length > 0 && (
        <ul class="actions">
          {v.actions.map((a) => <ActionRow key={a.index} review={v} action={a} onChange={onChange} />)}
        </ul>
      )}
    </article>
  );
}

function Label({ name, label, template }: { name: string; label: string; template: ReviewTemplate }) {
  const required = template.required.includes(name);
  return <label class={required ? "required" : ""} for={`review-${name}`}>{label}{required && <span title="required" aria-label="required"> *</span>}</label>;
}

export function ReviewFormView({ runs, experiment, onDone }: { runs?: string[]; experiment?: string; onDone: () => void }) {
  const [template, setTemplate] = useState<TemplateView | null>(null);
  const [form, setForm] = useState<ReviewForm>(EMPTY_FORM);
  const [problem, setProblem] = useState<string | null>(null);
  const [missing, setMissing] = useState<string[]>([]);
  useEffect(() => {
    api.reviewTemplate({}).then(setTemplate).catch((e) => setProblem(e.message));
  }, []);
  if (!template) return problem ? <div class="error">{problem}</div> : <div class="dim">loading the review template…</div>;
  const t = template.template;
  const set = (k: keyof ReviewForm) => (e: Event) => setForm({ ...form, [k]: value(e) });
  const cls = (name: string) => (missing.includes(name) ? "missing" : "");
  const submit = (e: Event) => {
    e.preventDefault();
    const req = reviewRequest(form, t, { runs, experiment });
    if ("error" in req) {
      setMissing(req.missing);
      return setProblem(req.error);
    }
    api.createReview(req)
      .then(() => {
        setProblem(null);
        setMissing([]);
        setForm(EMPTY_FORM);
        onDone();
      })
      .catch((err) => setProblem(err.message));
  };
  const text = (name: "objective" | "method" | "result" | "text", label: string) => (
    <div class={`field ${cls(name)}`} key={name}>
      <Label name={name} label={label} template={t} />
      <textarea id={`review-${name}`} rows={name === "text" ? 4 : 2} value={form[name]} onInput={set(name)} data-testid={`review-${name}`} />
    </div>
  );
  return (
    <form class="review-form" onSubmit={submit} data-testid="review-form">
      {STANDARD.map(([name, label]) => {
        if (name === "objective" || name === "method" || name === "result" || name === "text") return text(name, label);
        if (name === "confidence")
          return (
            <div class={`field ${cls(name)}`} key={name}>
              <Label name={name} label={label} template={t} />
              <select id="review-confidence" value={form.confidence} onChange={set("confidence")} data-testid="review-confidence">
                <option value="">—</option>
                <option value="low">low</option>
                <option value="medium">medium</option>
                <option value="high">high</option>
                <option value="calibrated">calibrated (0–1)</option>
              </select>
              {form.confidence === "calibrated" && (
                <>
                  {" "}<input placeholder="0.8" size={5} value={form.p} onInput={set("p")} aria-label="probability" />{" "}
                  <input placeholder="how it was calibrated" value={form.reason} onInput={set("reason")} aria-label="reason" />
                </>
              )}
            </div>
          );
        if (name === "decision")
          return (
            <div class={`field ${cls(name)}`} key={name}>
              <Label name={name} label={label} template={t} />
              <select id="review-decision" value={form.decision} onChange={set("decision")} data-testid="review-decision">
                <option value="">—</option>
                <option value="adopt">adopt</option>
                <option value="iterate">iterate</option>
                <option value="abandon">abandon</option>
              </select>
            </div>
          );
        return (
          <div class={`field ${cls(name)}`} key={name}>
            <Label name={name} label={label} template={t} />
            {form.actions.map((a, i) => (
              <div class="action-row" key={i}>
                <input placeholder="owner" size={10} value={a.owner} aria-label="action owner" data-testid="review-action-owner" onInput={(e) => setForm({ ...form, actions: form.actions.map((x, j) => (j === i ? { ...x, owner: value(e) } : x)) })} />{" "}
                <input placeholder="what to do next" size={40} value={a.text} aria-label="action" data-testid="review-action-text" onInput={(e) => setForm({ ...form, actions: form.actions.map((x, j) => (j === i ? { ...x, text: value(e) } : x)) })} />
              </div>
            ))}
            <button type="button" class="link" onClick={() => setForm({ ...form, actions: [...form.actions, { owner: "", text: "" }] })} data-testid="review-add-action">+ next action</button>
          </div>
        );
      })}
      {t.extra.map((f) => (
        <div class={`field ${cls(f.name)}`} key={f.name}>
          <Label name={f.name} label={f.name} template={t} />
          {f.kind === "choice" || f.kind === "bool" ? (
            <select id={`review-${f.name}`} value={form.extra[f.name] ?? ""} onChange={(e) => setForm({ ...form, extra: { ...form.extra, [f.name]: value(e) } })} data-testid={`review-extra-${f.name}`}>
              <option value="">—</option>
              {(f.kind === "bool" ? ["true", "false"] : f.options).map((o) => <option key={o} value={o}>{o}</option>)}
            </select>
          ) : (
            <input id={`review-${f.name}`} type={f.kind === "number" ? "number" : "text"} value={form.extra[f.name] ?? ""} onInput={(e) => setForm({ ...form, extra: { ...form.extra, [f.name]: value(e) } })} data-testid={`review-extra-${f.name}`} />
          )}
          {f.help && <span class="dim"> {f.help}</span>}
        </div>
      ))}
      <button type="submit" data-testid="review-submit">save review</button>
      {problem && <div class="error" data-testid="review-problem">{problem}</div>}
    </form>
  );
}

/** The reviews of a run or an experiment, and the form to write one. */
export function Reviews({ run, experiment, runs }: { run?: string; experiment?: string; runs?: string[] }) {
  const [list, setList] = useState<ReviewView[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [writing, setWriting] = useState(false);
  const load = () =>
    api.reviews({ run: run ?? null, experiment: experiment ?? null, owner: null, decision: null, open_actions: null, limit: null })
      .then((l) => setList(runs && runs.length > 1 ? l.filter((v) => v.review.runs.some((id) => runs.includes(id))) : l))
      .catch((e) => setProblem(e.message));
  useEffect(() => {
    load();
  }, [run, experiment, runs?.join(",")]);
  const target = run ? { runs: [run] } : runs ? { runs } : { experiment };
  return (
    <section class="card reviews" data-testid="reviews">
      <h2>Reviews</h2>
      {problem && <div class="error">{problem}</div>}
      {list && list.length === 0 && <p class="dim">No reviews yet.</p>}
      {list?.map((v) => <ReviewCard key={v.review.id} v={v} onChange={load} />)}
      {writing ? (
        <ReviewFormView {...target} onDone={() => { setWriting(false); load(); }} />
      ) : (
        <button onClick={() => setWriting(true)} data-testid="write-review">write a review</button>
      )}
    </section>
  );
}

/** Every open next action, by owner. */
export function OpenActions() {
  const [list, setList] = useState<ReviewView[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const load = () =>
    api.reviews({ run: null, experiment: null, owner: null, decision: null, open_actions: true, limit: null }).then(setList).catch((e) => setProblem(e.message));
  useEffect(() => {
    load();
  }, []);
  const groups = list ? openActionsByOwner(list) : [];
  return (
    <div class="page actions-page">
      <h1>Open next actions</h1>
      {problem && <div class="error">{problem}</div>}
      {list && groups.length === 0 && <p class="dim">No open next actions.</p>}
      {groups.map(([owner, items]) => (
        <section class="card" key={owner} data-testid="owner-actions" data-owner={owner}>
          <h2>{owner} <span class="dim">({items.length})</span></h2>
          <ul class="actions">
            {items.map(({ review, action }) => (
              <li key={`${review.review.id}/${action.index}`}>
                <ActionRow review={review} action={action} onChange={load} />
                <span class="dim">
                  {" "}from {review.author}'s review{review.review.objective ? ` “${review.review.objective}”` : ""}
                  {review.review.runs[0] && <> · <a href={`#/run/${review.review.runs[0]}`}>run</a></>}
                </span>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}

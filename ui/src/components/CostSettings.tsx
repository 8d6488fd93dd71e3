// The cost dashboard's settings: the team's price table and the budgets per family, each listed
// with a form that calls the API (`set_price`, `set_budget`). A form that is incomplete is refused
// before any call; after a change the dashboard is told (`onChange`) so its figures and its
// over-budget banner follow.

import { useEffect, useState } from "preact/hooks";

import { budgetAmount, budgetRequest, perUnit, priceFrom, priceRequest, usd } from "../cost";
import { time } from "../format";
import { api } from "../state";
import type { BudgetList, PriceList } from "../wire";

const input = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement | HTMLSelectElement).value);

export function PriceTable({ onChange }: { onChange?: () => void }) {
  const [list, setList] = useState<PriceList | null>(null);
  const [target, setTarget] = useState("");
  const [amount, setAmount] = useState("");
  const [per, setPer] = useState("gpu-hour");
  const [from, setFrom] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const load = () => api.prices({}).then(setList).catch((e) => setProblem(e.message));
  useEffect(() => {
    load();
  }, []);
  const save = () => {
    const req = priceRequest(target, amount, per, from);
    if ("error" in req) return setProblem(req.error);
    api.setPrice(req)
      .then(() => {
        setProblem(null);
        setAmount("");
        setFrom("");
        load();
        onChange?.();
      })
      .catch((e) => setProblem(e.message));
  };
  const entries = list ? [...list.entries].sort((a, b) => a.target.localeCompare(b.target) || (a.from_ms ?? -Infinity) - (b.from_ms ?? -Infinity)) : [];
  return (
    <section class="card prices" data-testid="prices">
      <h2>Prices</h2>
      <p class="dim">A run is costed from its machine: its GPU models' prices per GPU-hour plus its instance type's (or host's) price per hour. A new price applies from its date; earlier runs keep theirs.</p>
      {list && entries.length === 0 && <p class="dim">No prices yet: every run is unpriced unless it has its own hourly price.</p>}
      {entries.length > 0 && (
        <table class="kv" data-testid="price-list">
          <thead><tr><th>for</th><th>price</th><th>from</th><th>set by</th></tr></thead>
          <tbody>
            {entries.map((p) => (
              <tr key={p.id} data-target={p.target}>
                <th>{p.target}</th>
                <td>{usd(p.usd)} / {perUnit(p)}</td>
                <td>{priceFrom(p)}</td>
                <td>{p.set_by} <span class="dim">{time(p.set_ms)}</span></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="cost-form">
        <input placeholder="NVIDIA H200, an instance type or a host" value={target} onInput={input(setTarget)} size={28} aria-label="price target" data-testid="price-target" />{" "}
        <input placeholder="3.50" value={amount} onInput={input(setAmount)} size={8} aria-label="price in dollars" data-testid="price-usd" />{" "}
        <select value={per} onChange={input(setPer)} aria-label="price per" data-testid="price-per">
          <option value="gpu-hour">per GPU-hour</option>
          <option value="hour">per hour (machine)</option>
        </select>{" "}
        <input placeholder="from: 2026-11-01 or always" value={from} onInput={input(setFrom)} size={22} aria-label="price from" data-testid="price-from" />{" "}
        <button onClick={save} data-testid="set-price">set price</button>
      </div>
      {problem && <div class="error" data-testid="price-problem">{problem}</div>}
      {list && list.problems.map((p) => <div class="dim" key={p}>{p}</div>)}
    </section>
  );
}

export function Budgets({ families, onChange }: { families: string[]; onChange?: () => void }) {
  const [list, setList] = useState<BudgetList | null>(null);
  const [family, setFamily] = useState("");
  const [amount, setAmount] = useState("");
  const [period, setPeriod] = useState("month");
  const [problem, setProblem] = useState<string | null>(null);
  const load = () => api.budgets({}).then(setList).catch((e) => setProblem(e.message));
  useEffect(() => {
    load();
  }, []);
  const changed = () => {
    setProblem(null);
    load();
    onChange?.();
  };
  const save = () => {
    const req = budgetRequest(family, amount, period);
    if ("error" in req) return setProblem(req.error);
    api.setBudget(req)
      .then(() => {
        setAmount("");
        changed();
      })
      .catch((e) => setProblem(e.message));
  };
  const lift = (f: string) => api.setBudget({ family: f, usd: null, period: null }).then(changed).catch((e) => setProblem(e.message));
  return (
    <section class="card budgets" data-testid="budgets">
      <h2>Budgets</h2>
      {list && list.budgets.length === 0 && <p class="dim">No budgets: set one to be warned when a family's spend crosses it.</p>}
      {list && list.budgets.length > 0 && (
        <table class="kv" data-testid="budget-list">
          <thead><tr><th>family</th><th>budget</th><th>set by</th><th></th></tr></thead>
          <tbody>
            {list.budgets.map((b) => (
              <tr key={b.id} data-family={b.family}>
                <th>{b.family}</th>
                <td>{budgetAmount(b)}</td>
                <td>{b.set_by} <span class="dim">{time(b.set_ms)}</span></td>
                <td><button class="link" onClick={() => lift(b.family)} data-testid="lift-budget">lift</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="cost-form">
        <input placeholder="exp:NAME, owner:NAME, gpu:MODEL, tag:K=V, view:NAME" value={family} onInput={input(setFamily)} size={34} list="budget-families" aria-label="budget family" data-testid="budget-family" />
        <datalist id="budget-families">{families.map((f) => <option key={f} value={f} />)}</datalist>{" "}
        <input placeholder="5000" value={amount} onInput={input(setAmount)} size={8} aria-label="budget in dollars" data-testid="budget-usd" />{" "}
        <select value={period} onChange={input(setPeriod)} aria-label="budget period" data-testid="budget-period">
          <option value="day">per day</option>
          <option value="week">per week</option>
          <option value="month">per month</option>
          <option value="total">in all</option>
        </select>{" "}
        <button onClick={save} data-testid="set-budget">set budget</button>
      </div>
      {problem && <div class="error" data-testid="budget-problem">{problem}</div>}
      {list && list.problems.map((p) => <div class="dim" key={p}>{p}</div>)}
    </section>
  );
}

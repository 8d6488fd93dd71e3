// A run's cost panel: what it cost (grown to now while it runs) or why it is unpriced, its idle
// GPU time by phase, and its GPU utilisation chart with the idle stretches shaded.

import { useEffect, useState } from "preact/hooks";

import { share, usd } from "../cost";
import { api, theme } from "../state";
import type { RunCostView } from "../wire";

const svgUrl = (svg: string) => "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);

export function RunCost({ id }: { id: string }) {
  const [view, setView] = useState<RunCostView | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.runCost({ id, width: 900, dark: theme.value === "dark" }).then(setView).catch((e) => setError(e.message));
  }, [id, theme.value]);
  if (error) return <section class="card"><h2>Cost</h2><div class="error">{error}</div></section>;
  const c = view?.cost;
  if (!view || !c) return null;
  const idle = c.idle;
  return (
    <section class="card run-cost" data-testid="run-cost">
      <h2>Cost</h2>
      <dl>
        <dt>cost</dt>
        <dd>
          {c.usd === undefined ? <span class="badge warn">unpriced</span> : usd(c.usd)}
          {c.running ? " so far" : ""}
          {c.usd !== undefined && <span class="dim"> · GPUs {usd(c.gpu_usd)} · machine {usd(c.machine_usd)} · {c.source === "run" ? "the run's own price" : "the team's prices"}</span>}
        </dd>
        <dt>time</dt>
        <dd>{c.hours.toFixed(2)} h{c.gpus > 0 ? ` on ${c.gpus}× ${c.gpu_model ?? "GPU"} (${c.gpu_hours.toFixed(2)} GPU-hours)` : ""}</dd>
        {c.note && <><dt>note</dt><dd>{c.note}</dd></>}
        <dt>idle GPUs</dt>
        <dd>
          {idle
            ? `${share(idle.observed_s > 0 ? idle.idle_s / idle.observed_s : undefined)} of ${idle.observed_s.toFixed(0)} GPU-seconds below ${idle.threshold_pct}% (${usd(c.idle_usd)}): start ${idle.start_s.toFixed(0)}s, middle ${idle.middle_s.toFixed(0)}s, end ${idle.end_s.toFixed(0)}s, unused ${idle.unused_s.toFixed(0)}s`
            : "no GPU utilisation readings"}
        </dd>
      </dl>
      {view.chart && <img class="chart-img" alt="GPU utilisation, idle stretches shaded" src={svgUrl(view.chart.svg)} />}
    </section>
  );
}

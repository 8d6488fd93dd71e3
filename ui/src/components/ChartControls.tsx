// The controls every set of metric charts shares: smoothing, the x axis, log y.

export interface ChartSettings {
  smooth: number;
  x: string;
  log: boolean;
}

export const DEFAULT_SETTINGS: ChartSettings = { smooth: 0, x: "step", log: false };

export function ChartControls({ value, onChange, metrics }: { value: ChartSettings; onChange: (s: ChartSettings) => void; metrics: string[] }) {
  return (
    <span class="chart-controls">
      <label class="smooth">
        smoothing{" "}
        <input type="range" min="0" max="0.99" step="0.01" value={value.smooth} aria-label="smoothing"
          onInput={(e) => onChange({ ...value, smooth: Number((e.currentTarget as HTMLInputElement).value) })} />{" "}
        {value.smooth.toFixed(2)}
      </label>
      <label class="smooth">
        x{" "}
        <select aria-label="x axis" value={value.x} onChange={(e) => onChange({ ...value, x: (e.currentTarget as HTMLSelectElement).value })}>
          <option value="step">step</option>
          <option value="relative">time since start</option>
          <option value="time">wall time</option>
          {metrics.map((m) => <option key={m} value={m}>{m}</option>)}
        </select>
      </label>
      <label class="smooth">
        <input type="checkbox" checked={value.log} aria-label="log y" onChange={() => onChange({ ...value, log: !value.log })} /> log y
      </label>
    </span>
  );
}

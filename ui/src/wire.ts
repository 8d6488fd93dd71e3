// Wire types of Cairn's JSON API (/api/v1 and the desktop commands): the shapes the Rust DTOs
// serialise to. Non-finite numbers arrive as the strings "NaN", "Infinity", "-Infinity".

export type Num = number | "NaN" | "Infinity" | "-Infinity";
export type RunStatus = "running" | "finished" | "failed" | "killed";

export interface ApiErrorBody {
  code: string;
  message: string;
}

export interface Experiment {
  id: string;
  name: string;
  created_ms: number;
  description?: string;
  tags?: Record<string, string>;
  deleted: boolean;
}

export interface ExperimentSummary extends Experiment {
  runs: number;
}

export interface RunSummary {
  id: string;
  experiment: string;
  experiment_name: string;
  name: string;
  owner: string | null;
  status: RunStatus;
  start_ms: number;
  end_ms: number | null;
  incomplete: boolean;
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, Num>;
}

export interface SearchPage {
  total: number;
  next_offset: number | null;
  runs: RunSummary[];
}

export interface MetricSummary {
  last: Num;
  step: number;
  ts_ms: number;
  min?: Num;
  max?: Num;
  count: number;
}

export interface DatasetSnapshot {
  name?: string;
  uri?: string;
  digest?: string;
  size_bytes?: number;
  rows?: number;
  source_type?: string;
  schema?: string;
}

export interface CodeVersion {
  repo?: string;
  commit?: string;
  branch?: string;
  dirty: boolean;
  diff_digest?: string;
}

export interface GpuGroup {
  model: string;
  count: number;
  driver?: string;
  memory_bytes?: number;
}

export interface InfraProfile {
  host?: string;
  os?: string;
  cpu_model?: string;
  cpu_cores?: number;
  memory_bytes?: number;
  gpus?: GpuGroup[];
  container_image?: string;
  instance_type?: string;
  hourly_price_usd?: number;
}

export interface Evaluation {
  metrics: Record<string, number>;
  report?: string;
}

export interface Lineage {
  datasets?: Record<string, DatasetSnapshot>;
  feature_set?: { name: string; version: string };
  code?: CodeVersion;
  infra?: InfraProfile;
  evaluations?: Record<string, Evaluation>;
}

export interface ArtifactRef {
  hash: string;
  size: number;
  kind: "file" | "dir";
}

export interface Conflict {
  field: string;
  values: unknown[];
}

export interface RunView {
  id: string;
  experiment: string;
  experiment_name: string;
  name: string;
  owner?: string;
  status: RunStatus;
  start_ms: number;
  end_ms?: number;
  parent?: string;
  parent_kind?: "sweep" | "fork" | "resume" | "child";
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, MetricSummary>;
  live_metrics: Record<string, MetricSummary>;
  lineage: Lineage;
  artifacts: Record<string, ArtifactRef>;
  notes?: string;
  incomplete?: string[];
  deleted: boolean;
  conflicts?: Conflict[];
}

export interface Bucket {
  step_lo: number;
  step_hi: number;
  count: number;
  min: Num;
  max: Num;
  first: Num;
  last: Num;
  nonfinite: number;
}

export interface Info {
  version: string;
  workspace: string;
  user: string;
  demo: boolean;
}

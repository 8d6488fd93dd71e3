//! Demo data: a believable catalog of experiment families (vision, NLP, language modelling,
//! tabular, speech, detection) with sweeps, owners, tags, full lineage and metric curves, so
//! every screen and benchmark has something real-looking to show. Deterministic for a seed.

use std::collections::BTreeMap;
use std::time::Instant;

use cairn_metrics::Point;
use cairn_model::{
    CodeVersion, DatasetSnapshot, Evaluation, Experiment, FeatureSetVersion, GpuGroup,
    InfraProfile, MetricSummary, Num, ParentKind, Run, RunId, RunStatus,
};

use crate::{Error, Stores};

/// What `cairn demo` generates.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub runs: u64,
    /// Points per metric curve; `None` picks by size (300 up to 1k runs, 100 up to 20k, else 50).
    pub steps: Option<u32>,
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            runs: 240,
            steps: None,
            seed: 7,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    pub experiments: usize,
    pub runs: u64,
    pub points: u64,
    pub seconds: f64,
}

/// SplitMix64: tiny, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Deep,
    Tabular,
}

struct Family {
    name: &'static str,
    team: &'static str,
    owners: &'static [&'static str],
    repo: &'static str,
    dataset: &'static str,
    rows: u64,
    kind: Kind,
    /// The headline metric, higher is better.
    score: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "resnet50-imagenet",
        team: "vision",
        owners: &["alice", "chen", "dana"],
        repo: "git@github.com:acme-ml/vision.git",
        dataset: "imagenet-1k",
        rows: 1_281_167,
        kind: Kind::Deep,
        score: "acc",
    },
    Family {
        name: "bert-base-sst2",
        team: "nlp",
        owners: &["bob", "alice", "eve"],
        repo: "git@github.com:acme-ml/nlp.git",
        dataset: "glue-sst2",
        rows: 67_349,
        kind: Kind::Deep,
        score: "acc",
    },
    Family {
        name: "gpt2-small-pretrain",
        team: "lm",
        owners: &["frank", "bob"],
        repo: "git@github.com:acme-ml/lm.git",
        dataset: "openwebtext",
        rows: 8_013_769,
        kind: Kind::Deep,
        score: "acc",
    },
    Family {
        name: "xgboost-churn",
        team: "growth",
        owners: &["grace", "heidi"],
        repo: "git@github.com:acme-ml/churn.git",
        dataset: "churn-events",
        rows: 2_400_000,
        kind: Kind::Tabular,
        score: "auc",
    },
    Family {
        name: "whisper-small-finetune",
        team: "speech",
        owners: &["ivan", "chen"],
        repo: "git@github.com:acme-ml/speech.git",
        dataset: "common-voice-en",
        rows: 1_100_000,
        kind: Kind::Deep,
        score: "acc",
    },
    Family {
        name: "yolov8-retail-detection",
        team: "vision",
        owners: &["dana", "alice"],
        repo: "git@github.com:acme-ml/detect.git",
        dataset: "shelf-images",
        rows: 184_000,
        kind: Kind::Deep,
        score: "map50",
    },
];

const NOTES: &[&str] = &[
    "Baseline with label smoothing 0.1 and a cosine schedule.",
    "Warmup for 5% of steps; loss spikes disappear with gradient clipping at 1.0.",
    "Tried label smoothing 0.2: slightly worse calibration, same accuracy.",
    "Mixed precision (bf16); throughput up 1.8x, no accuracy change.",
    "Data loader was the bottleneck: GPU idle 30% of the time. Fixed with 16 workers.",
    "Lower learning rate after divergence in the previous trial.",
    "Ablation: no augmentation. Overfits after epoch 40.",
    "",
    "",
    "",
];

/// A generated run and its metric curves.
type DemoRun = (Run, Vec<(&'static str, Vec<Point>)>);

/// Runs per experiment before a family gets another sweep experiment.
const RUNS_PER_EXPERIMENT: u64 = 2000;
/// Runs recorded per catalog write when generating.
const BATCH: usize = 500;

impl Stores {
    /// Fills the workspace with demo data and marks it as a demo workspace.
    pub fn generate_demo(
        &mut self,
        opts: &DemoOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<DemoReport, Error> {
        let started = Instant::now();
        let steps = opts.steps.unwrap_or(match opts.runs {
            0..=1000 => 300,
            1001..=20000 => 100,
            _ => 50,
        });
        let mut rng = Rng(opts.seed);
        let per_family = opts.runs.div_ceil(FAMILIES.len() as u64).max(1);
        let sweeps_per_family = per_family.div_ceil(RUNS_PER_EXPERIMENT).max(1);
        // Runs start over the last 90 days, spread evenly, newest last.
        let now = crate::stores::now_ms();
        let span_ms: i64 = 90 * 24 * 3600 * 1000;
        let mut done = 0u64;
        let mut points = 0u64;
        let mut experiments = 0usize;
        progress(0, opts.runs);
        for (fi, fam) in FAMILIES.iter().enumerate() {
            let fam_runs = per_family.min(opts.runs.saturating_sub(per_family * fi as u64));
            if fam_runs == 0 {
                break;
            }
            for sweep in 0..sweeps_per_family {
                let lo = sweep * RUNS_PER_EXPERIMENT;
                let n = fam_runs.saturating_sub(lo).min(RUNS_PER_EXPERIMENT);
                if n == 0 {
                    break;
                }
                let name = if sweeps_per_family == 1 {
                    fam.name.to_owned()
                } else {
                    format!("{}-sweep-{:02}", fam.name, sweep + 1)
                };
                let (exp, _) = self.ensure_experiment(&name)?;
                experiments += 1;
                let mut batch: Vec<DemoRun> = Vec::with_capacity(BATCH);
                for i in 0..n {
                    // Each family runs across the whole period; its last two runs are still going.
                    let nth = lo + i;
                    let start = now
                        - (span_ms as f64 * (1.0 - (nth + 1) as f64 / fam_runs as f64)) as i64
                        - 7_200_000
                        - fi as i64 * 600_000;
                    let newest = nth + 2 >= fam_runs;
                    let parent = batch
                        .iter()
                        .rev()
                        .find(|(r, _)| r.name.starts_with("sweep-"))
                        .map(|(r, _)| r.id);
                    let generated = make_run(&mut rng, fam, &exp, i, start, steps, newest, parent);
                    points += generated.1.iter().map(|(_, p)| p.len() as u64).sum::<u64>();
                    batch.push(generated);
                    if batch.len() == BATCH || i + 1 == n {
                        done += batch.len() as u64;
                        self.write_demo_batch(&mut batch)?;
                        progress(done, opts.runs);
                    }
                }
            }
        }
        self.mark_demo()?;
        Ok(DemoReport {
            experiments,
            runs: done,
            points,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn write_demo_batch(&mut self, batch: &mut Vec<DemoRun>) -> Result<(), Error> {
        let runs: Vec<Run> = batch.iter().map(|(r, _)| r.clone()).collect();
        self.import_runs(runs)?;
        let store = self.metric_store();
        for (run, series) in batch.drain(..) {
            let id = run.id.to_string();
            let slices: Vec<(&str, &[Point])> =
                series.iter().map(|(k, p)| (*k, p.as_slice())).collect();
            if !slices.is_empty() {
                store.append_batch(&id, &slices)?;
                if run.status.is_final() {
                    store.seal_run(&id)?;
                }
            }
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn make_run(
    rng: &mut Rng,
    fam: &Family,
    exp: &Experiment,
    i: u64,
    start_ms: i64,
    steps: u32,
    newest: bool,
    sweep_parent: Option<RunId>,
) -> (Run, Vec<(&'static str, Vec<Point>)>) {
    let id = RunId::from_parts(
        start_ms as u64,
        ((rng.next() as u128) << 64) | rng.next() as u128,
    );
    let is_sweep_parent = i.is_multiple_of(16);
    let name = if is_sweep_parent {
        format!("sweep-{}", i / 16 + 1)
    } else {
        format!("trial-{i:04}")
    };
    let mut run = Run::new(id, exp.id, name, start_ms);
    run.owner = Some((*rng.pick(fam.owners)).to_owned());
    if !is_sweep_parent && let Some(p) = sweep_parent {
        run.parent = Some(p);
        run.parent_kind = Some(if rng.chance(0.03) {
            ParentKind::Resume
        } else {
            ParentKind::Sweep
        });
    }
    run.tags.insert("team".into(), fam.team.into());
    run.tags.insert(
        "stage".into(),
        (*rng.pick(&["baseline", "candidate", "candidate", "exploration"])).into(),
    );
    if rng.chance(0.05) {
        run.tags.insert("champion".into(), "true".into());
    }
    run.notes = (*rng.pick(NOTES)).to_owned();

    // Hyperparameters, and how good they are (quality in 0..1 drives the final score).
    let mut quality: f64;
    match fam.kind {
        Kind::Deep => {
            let lr = rng.log_range(1e-5, 1e-1);
            let opt = *rng.pick(&["adam", "adamw", "sgd", "adam"]);
            let ls = *rng.pick(&[0.0, 0.0, 0.1, 0.2]);
            let bs = *rng.pick(&[64u32, 128, 256, 512]);
            run.params
                .insert("learning_rate".into(), format!("{lr:.6}"));
            run.params.insert("optimizer".into(), opt.into());
            run.params.insert("batch_size".into(), bs.to_string());
            run.params.insert(
                "weight_decay".into(),
                (*rng.pick(&["0.0", "0.0001", "0.01", "0.05"])).into(),
            );
            run.params.insert("label_smoothing".into(), ls.to_string());
            run.params
                .insert("epochs".into(), (*rng.pick(&["10", "30", "90"])).into());
            run.params
                .insert("dropout".into(), format!("{:.2}", rng.range(0.0, 0.5)));
            run.params.insert(
                "scheduler".into(),
                (*rng.pick(&["cosine", "linear", "step"])).into(),
            );
            let best_lr = if opt == "sgd" { 0.05 } else { 3e-4 };
            quality = (1.0 - (lr.ln() - f64::ln(best_lr)).abs() / 6.0).clamp(0.0, 1.0);
            quality += if opt == "sgd" { -0.05 } else { 0.02 } + if ls > 0.0 { 0.03 } else { 0.0 };
        }
        Kind::Tabular => {
            let depth = (rng.next() % 10 + 3) as u32;
            let eta = rng.log_range(0.01, 0.5);
            run.params.insert("max_depth".into(), depth.to_string());
            run.params.insert("eta".into(), format!("{eta:.4}"));
            run.params
                .insert("subsample".into(), format!("{:.2}", rng.range(0.5, 1.0)));
            run.params.insert(
                "n_estimators".into(),
                (*rng.pick(&["200", "500", "1000"])).into(),
            );
            run.params
                .insert("objective".into(), "binary:logistic".into());
            quality =
                (1.0 - (depth as f64 - 7.0).abs() / 8.0 - (eta.ln() - 0.1f64.ln()).abs() / 8.0)
                    .clamp(0.0, 1.0);
        }
    }
    quality = (quality + rng.normal() * 0.04).clamp(0.0, 1.0);

    // Lineage.
    let snapshot = i / 400; // a new dataset snapshot every 400 runs
    let digest = |rng: &mut Rng| format!("blake3:{}", rng.hex(64));
    let mut snap_rng = Rng(fam.name.len() as u64 * 1_000_003 + snapshot);
    run.lineage.datasets.insert(
        "train".into(),
        DatasetSnapshot {
            uri: Some(format!(
                "s3://acme-datasets/{}/v{}/train",
                fam.dataset,
                snapshot + 1
            )),
            digest: Some(digest(&mut snap_rng)),
            size_bytes: Some(fam.rows * 1800),
            rows: Some(fam.rows),
            ..Default::default()
        },
    );
    run.lineage.datasets.insert(
        "val".into(),
        DatasetSnapshot {
            uri: Some(format!(
                "s3://acme-datasets/{}/v{}/val",
                fam.dataset,
                snapshot + 1
            )),
            digest: Some(digest(&mut snap_rng)),
            size_bytes: Some(fam.rows * 90),
            rows: Some(fam.rows / 20),
            ..Default::default()
        },
    );
    // Notebook runs now and then skip the dataset snapshot: the schema marks them incomplete.
    if rng.chance(0.03) {
        for d in run.lineage.datasets.values_mut() {
            d.digest = None;
        }
    }
    let mut commit_rng = Rng(fam.name.len() as u64 * 7919 + i / 16);
    let dirty = rng.chance(0.08);
    run.lineage.code = Some(CodeVersion {
        repo: Some(fam.repo.into()),
        commit: Some(commit_rng.hex(40)),
        branch: Some(if i % 48 < 32 {
            "main".into()
        } else {
            format!(
                "exp/{}",
                rng.pick(&["label-smoothing", "warmup", "bf16", "augment"])
            )
        }),
        dirty,
        diff_digest: dirty.then(|| digest(rng)),
    });
    if matches!(fam.kind, Kind::Tabular) {
        run.lineage.feature_set = Some(FeatureSetVersion {
            name: "churn-features".into(),
            version: format!("v{}", 10 + snapshot),
        });
        run.lineage.infra = Some(InfraProfile {
            host: Some(format!("cpu-box-{:02}", rng.next() % 4 + 1)),
            os: Some("Ubuntu 22.04.5 LTS (6.8.0-49-generic)".into()),
            cpu_model: Some("Intel(R) Xeon(R) Platinum 8488C".into()),
            cpu_cores: Some(32),
            memory_bytes: Some(128 << 30),
            gpus: vec![],
            container_image: Some("ghcr.io/acme-ml/xgboost:2.1.3".into()),
            instance_type: Some("c7i.8xlarge".into()),
            hourly_price_usd: Some(1.428),
        });
    } else {
        run.lineage.infra = Some(InfraProfile {
            host: Some(format!("gpu-box-{:02}", rng.next() % 8 + 1)),
            os: Some("Ubuntu 22.04.5 LTS (6.8.0-49-generic)".into()),
            cpu_model: Some("Intel(R) Xeon(R) Platinum 8480+".into()),
            cpu_cores: Some(192),
            memory_bytes: Some(2048 << 30),
            // As the GPU box in the fixtures reports itself (nvidia-smi on an H200).
            gpus: vec![GpuGroup {
                model: "NVIDIA H200".into(),
                count: 8,
                driver: Some("580.159.04".into()),
                memory_bytes: Some(143_771 << 20),
            }],
            container_image: Some("nvcr.io/nvidia/pytorch:25.10-py3".into()),
            instance_type: Some("p5en.48xlarge".into()),
            hourly_price_usd: Some(63.296),
        });
    }

    // Outcome.
    let roll = rng.unit();
    run.status = if newest {
        RunStatus::Running
    } else if roll < 0.04 {
        RunStatus::Failed
    } else if roll < 0.06 {
        RunStatus::Killed
    } else {
        RunStatus::Finished
    };
    let step_ms = rng.range(800.0, 2500.0);
    let total_steps = match run.status {
        RunStatus::Finished => steps,
        _ => ((steps as f64) * rng.range(0.2, 0.8)) as u32,
    }
    .max(2);
    if run.status.is_final() {
        run.end_ms = Some(start_ms + (total_steps as f64 * step_ms * 10.0) as i64);
    }
    if is_sweep_parent {
        return (run, Vec::new());
    }

    let (final_score, floor_loss) = match fam.score {
        "auc" => (0.70 + 0.25 * quality, 0.25 + 0.3 * (1.0 - quality)),
        "map50" => (0.35 + 0.4 * quality, 0.6 + (1.0 - quality)),
        _ => (0.55 + 0.42 * quality, 0.05 + 0.9 * (1.0 - quality)),
    };
    let diverges = run.status == RunStatus::Failed && rng.chance(0.5);
    let tau = steps as f64 * rng.range(0.15, 0.35);
    let mut loss = Vec::with_capacity(total_steps as usize);
    let mut score = Vec::with_capacity(total_steps as usize);
    let mut val_loss = Vec::with_capacity(total_steps as usize / 5 + 1);
    let mut lr_curve = Vec::with_capacity(total_steps as usize);
    let base_lr = run
        .params
        .get("learning_rate")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.1);
    let step_stride = 10i64; // steps are logged every 10 training steps
    for s in 0..total_steps {
        let t = s as f64;
        let ts = start_ms + (t * step_ms * step_stride as f64 + rng.range(0.0, 40.0)) as i64;
        let step = s as i64 * step_stride;
        let decay = (-t / tau).exp();
        let mut l = floor_loss + 2.3 * decay + rng.normal().abs() * 0.03 * (0.3 + decay);
        if rng.chance(0.01) {
            l *= rng.range(2.0, 4.0); // a loss spike: charts must show it
        }
        if diverges && s as f64 > total_steps as f64 * 0.7 {
            l = f64::NAN;
        }
        let sc = (final_score * (1.0 - decay * 0.9) + rng.normal() * 0.006).clamp(0.0, 1.0);
        // Training code logs float32 scalars (`loss.item()`): keep that precision.
        loss.push(Point {
            step,
            ts_ms: ts,
            value: l as f32 as f64,
        });
        score.push(Point {
            step,
            ts_ms: ts,
            value: sc as f32 as f64,
        });
        let progress = t / steps as f64;
        lr_curve.push(Point {
            step,
            ts_ms: ts,
            value: (base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32 as f64,
        });
        if s % 5 == 4 {
            val_loss.push(Point {
                step,
                ts_ms: ts,
                value: (l * 1.08 + 0.02) as f32 as f64,
            });
        }
    }
    let series: Vec<(&'static str, Vec<Point>)> = vec![
        ("loss", loss),
        (fam.score, score),
        ("val_loss", val_loss),
        ("lr", lr_curve),
    ];
    for (key, pts) in &series {
        if let Some(s) = summarize(pts) {
            run.metrics.insert((*key).to_owned(), s);
        }
    }
    if run.status == RunStatus::Finished {
        let final_value = run.metrics.get(fam.score).map_or(0.0, |m| m.last);
        let round = |v: f64| (v * 1e4).round() / 1e4;
        let overall = round(final_value - 0.01 + rng.normal() * 0.005);
        let mut test = Evaluation {
            dataset: run
                .lineage
                .datasets
                .get("val")
                .and_then(|d| d.digest.clone()),
            metrics: BTreeMap::from([(fam.score.to_owned(), Num(overall))]),
            ..Default::default()
        };
        // Some runs were evaluated per group too: the score and the selection rate by sex,
        // with a gap for the fairness figures to show.
        if rng.chance(0.3) {
            let gap = rng.range(0.005, 0.09);
            let rate = rng.range(0.2, 0.5);
            let rate_gap = rng.range(0.0, 0.12);
            for (slice, score, sel) in [
                ("sex=female", overall - gap / 2.0, rate - rate_gap / 2.0),
                ("sex=male", overall + gap / 2.0, rate + rate_gap / 2.0),
            ] {
                test.slices.insert(
                    slice.into(),
                    BTreeMap::from([
                        (fam.score.to_owned(), Num(round(score))),
                        ("selection_rate".to_owned(), Num(round(sel))),
                    ]),
                );
            }
        }
        run.lineage.evaluations.insert("test".into(), test);
    }
    (run, series)
}

fn summarize(points: &[Point]) -> Option<MetricSummary> {
    let last = points.last()?;
    let finite = points.iter().map(|p| p.value).filter(|v| v.is_finite());
    let min = finite.clone().reduce(f64::min);
    let max = finite.reduce(f64::max);
    Some(MetricSummary {
        last: last.value,
        step: last.step,
        ts_ms: last.ts_ms,
        min,
        max,
        count: points.len() as u64,
    })
}

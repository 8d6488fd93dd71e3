//! The tantivy schema and how a run becomes a document.
//!
//! Fixed fields hold the run's attributes and lineage. Dynamic keys (params, tags, metrics) go
//! into JSON fields, one column per key: `tags`/`params` as raw strings (indexed for `=`, `IN`,
//! `LIKE`; fast for sorting), `params_num` and `metrics` as f64 fast columns (range filters and
//! sorting read the column of that one key). Evaluations go the same way: `evals` holds each
//! evaluation's overall metrics under `BENCHMARK.METRIC`, `fairness` each metric's worst
//! fairness figure over the run's evaluations and sensitive attributes under
//! `METRIC.difference` (the largest) and `METRIC.ratio` (the smallest); `compliance` is the
//! run's compliance state. Nothing is stored: a hit is read back as its run id
//! from two u64 fast fields, and the caller loads the run from the catalog.

use std::collections::BTreeMap;

use cairn_model::{ParamValue, Run};
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, NumericOptions, OwnedValue, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::{TantivyDocument, Term};

/// The tag MLflow clients read and write a run's notes as.
const NOTE_TAG: &str = "mlflow.note.content";

/// Bumped whenever the schema or what goes into a document changes: an index written with
/// another version is rebuilt.
/// (2: the `cost_*` columns; 3: `evals`, `fairness` and `compliance`; 4: the notes as the tag
/// `mlflow.note.content`; 5: `review_*` and reviews' text.)
pub(crate) const SCHEMA_VERSION: u32 = 5;

/// Tokenizer of the free-text field, registered on every index by [`register_tokenizers`].
pub(crate) const TEXT_TOKENIZER: &str = "cairn_text";

/// Words split on anything not alphanumeric, longer than 40 bytes dropped, lower-cased,
/// folded to ASCII (`café` is `cafe`), and stemmed with the Snowball English stemmer
/// (tantivy's `stemmer` feature): "smoothed labels" finds "label smoothing".
pub(crate) fn register_tokenizers(index: &tantivy::Index) {
    use tantivy::tokenizer::{
        AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
        TextAnalyzer,
    };
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build();
    index.tokenizers().register(TEXT_TOKENIZER, analyzer);
}

/// One run to index, and the name of its experiment (denormalised so `exp:NAME` and free text
/// find it without a join), and its cost figures when the cost projection has them.
#[derive(Debug, Clone, Copy)]
pub struct IndexedRun<'a> {
    pub run: &'a Run,
    pub experiment_name: &'a str,
    pub cost: Option<IndexedCost>,
    /// What the run's reviews say, when it has any.
    pub review: Option<&'a IndexedReview>,
}

/// What search reads of a run's reviews (each list holds one entry per review or action, in
/// any order): `review.id`, `review.decision`, `review.confidence` (a level), `review.author`,
/// `review.action_owner` (owners of *open* next actions), and their prose for free text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexedReview {
    pub ids: Vec<String>,
    pub decisions: Vec<String>,
    pub confidences: Vec<String>,
    pub authors: Vec<String>,
    pub open_action_owners: Vec<String>,
    pub text: Vec<String>,
}

/// The cost figures search reads (`cost.usd`, `cost.idle_usd`, `cost.idle_share`,
/// `cost.gpu_hours`); a missing one (an unpriced run's dollars) is left out of the document.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IndexedCost {
    pub usd: Option<f64>,
    pub idle_usd: Option<f64>,
    pub idle_share: Option<f64>,
    pub gpu_hours: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub schema: Schema,
    pub id: Field,
    pub id_hi: Field,
    pub id_lo: Field,
    pub experiment_id: Field,
    pub experiment: Field,
    pub name: Field,
    pub owner: Field,
    pub status: Field,
    pub lifecycle: Field,
    pub created: Field,
    pub ended: Field,
    pub tags: Field,
    pub params: Field,
    pub params_num: Field,
    pub metrics: Field,
    pub evals: Field,
    pub fairness: Field,
    pub compliance: Field,
    pub dataset_name: Field,
    pub dataset_digest: Field,
    pub dataset_context: Field,
    pub dataset_uri: Field,
    pub feature_set_name: Field,
    pub feature_set_version: Field,
    pub code_commit: Field,
    pub code_branch: Field,
    pub code_repo: Field,
    pub infra_host: Field,
    pub infra_gpu: Field,
    pub infra_os: Field,
    pub infra_instance_type: Field,
    pub cost: [Field; 4],
    pub review_id: Field,
    pub review_decision: Field,
    pub review_confidence: Field,
    pub review_author: Field,
    pub review_action_owner: Field,
    pub text: Field,
}

pub(crate) const ID_HI: &str = "id_hi";
pub(crate) const ID_LO: &str = "id_lo";
pub(crate) const ACTIVE: &str = "active";
pub(crate) const DELETED: &str = "deleted";

impl Fields {
    pub fn new() -> Fields {
        let mut b = Schema::builder();
        let raw = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic);
        let keyword = TextOptions::default().set_indexing_options(raw.clone());
        let sortable = keyword.clone().set_fast("raw");
        let fast_f64 = NumericOptions::default().set_fast();
        let text_json = JsonObjectOptions::default()
            .set_indexing_options(raw)
            .set_fast("raw");
        let num_json = JsonObjectOptions::default().set_fast("raw");
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TEXT_TOKENIZER)
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let id = b.add_text_field("id", keyword.clone());
        let id_hi = b.add_u64_field(ID_HI, NumericOptions::default().set_fast());
        let id_lo = b.add_u64_field(ID_LO, NumericOptions::default().set_fast());
        let experiment_id = b.add_text_field("experiment_id", sortable.clone());
        let experiment = b.add_text_field("experiment", sortable.clone());
        let name = b.add_text_field("name", sortable.clone());
        let owner = b.add_text_field("owner", sortable.clone());
        let status = b.add_text_field("status", sortable.clone());
        let lifecycle = b.add_text_field("lifecycle", keyword.clone());
        let created = b.add_f64_field("created", fast_f64.clone());
        let ended = b.add_f64_field("ended", fast_f64.clone());
        let cost =
            crate::query::CostField::ALL.map(|c| b.add_f64_field(c.column(), fast_f64.clone()));
        let tags = b.add_json_field("tags", text_json.clone());
        let params = b.add_json_field("params", text_json);
        let params_num = b.add_json_field("params_num", num_json.clone());
        let metrics = b.add_json_field("metrics", num_json.clone());
        let evals = b.add_json_field("evals", num_json.clone());
        let fairness = b.add_json_field("fairness", num_json);
        let compliance = b.add_text_field("compliance", sortable.clone());
        let mut kw = |n: &str| b.add_text_field(n, keyword.clone());
        let dataset_name = kw("dataset_name");
        let dataset_digest = kw("dataset_digest");
        let dataset_context = kw("dataset_context");
        let dataset_uri = kw("dataset_uri");
        let feature_set_name = kw("feature_set_name");
        let feature_set_version = kw("feature_set_version");
        let code_commit = kw("code_commit");
        let code_branch = kw("code_branch");
        let code_repo = kw("code_repo");
        let infra_host = kw("infra_host");
        let infra_gpu = kw("infra_gpu");
        let infra_os = kw("infra_os");
        let infra_instance_type = kw("infra_instance_type");
        let review_id = kw("review_id");
        let review_decision = kw("review_decision");
        let review_confidence = kw("review_confidence");
        let review_author = kw("review_author");
        let review_action_owner = kw("review_action_owner");
        let text = b.add_text_field("text", text);
        Fields {
            schema: b.build(),
            id,
            id_hi,
            id_lo,
            experiment_id,
            experiment,
            name,
            owner,
            status,
            lifecycle,
            created,
            ended,
            tags,
            params,
            params_num,
            metrics,
            evals,
            fairness,
            compliance,
            dataset_name,
            dataset_digest,
            dataset_context,
            dataset_uri,
            feature_set_name,
            feature_set_version,
            code_commit,
            code_branch,
            code_repo,
            infra_host,
            infra_gpu,
            infra_os,
            infra_instance_type,
            cost,
            review_id,
            review_decision,
            review_confidence,
            review_author,
            review_action_owner,
            text,
        }
    }

    /// `evals` and `fairness` of one run: each evaluation's overall metrics under
    /// `BENCHMARK.METRIC`, and per metric the worst fairness figure over every evaluation and
    /// sensitive attribute (NaN figures left out), so `fairness.acc.difference < 0.05` holds
    /// only when every gap of `acc` the run measured is under 0.05.
    fn add_evaluations(&self, doc: &mut TantivyDocument, run: &Run) {
        let keyed = |key: &str| !key.is_empty() && !key.contains(['\0', '\u{1}']);
        let mut evals = Vec::new();
        let mut worst: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        let figures: Vec<_> = run
            .lineage
            .evaluations
            .iter()
            .filter(|(b, _)| keyed(b))
            .flat_map(|(b, e)| {
                for (m, v) in e.metrics.iter().filter(|(m, _)| keyed(m)) {
                    evals.push((format!("{b}.{m}"), OwnedValue::F64(v.0)));
                }
                cairn_model::fairness(b, e)
            })
            .collect();
        for f in figures.iter().filter(|f| keyed(&f.metric)) {
            let w = worst
                .entry(f.metric.as_str())
                .or_insert((f64::NAN, f64::NAN));
            // f64::max and min skip a NaN side: a NaN figure never hides a real one.
            w.0 = w.0.max(f.difference.0);
            w.1 = w.1.min(f.ratio.0);
        }
        if !evals.is_empty() {
            doc.add_field_value(self.evals, &OwnedValue::Object(evals));
        }
        let mut fair = Vec::new();
        for (m, (difference, ratio)) in worst {
            for (what, v) in [("difference", difference), ("ratio", ratio)] {
                if !v.is_nan() {
                    fair.push((format!("{m}.{what}"), OwnedValue::F64(v)));
                }
            }
        }
        if !fair.is_empty() {
            doc.add_field_value(self.fairness, &OwnedValue::Object(fair));
        }
    }

    pub fn id_term(&self, hex: &str) -> Term {
        Term::from_field_text(self.id, hex)
    }

    /// The document for one run.
    pub fn document(&self, r: IndexedRun<'_>) -> TantivyDocument {
        let run = r.run;
        let mut doc = TantivyDocument::new();
        let (hi, lo) = id_halves(run.id);
        doc.add_text(self.id, run.id.to_hex());
        doc.add_u64(self.id_hi, hi);
        doc.add_u64(self.id_lo, lo);
        doc.add_text(self.experiment_id, run.experiment.to_hex());
        doc.add_text(self.experiment, r.experiment_name);
        doc.add_text(self.name, &run.name);
        if let Some(o) = &run.owner {
            doc.add_text(self.owner, o);
        }
        doc.add_text(self.status, run.status.as_str().to_ascii_uppercase());
        doc.add_text(self.lifecycle, if run.deleted { DELETED } else { ACTIVE });
        doc.add_text(self.compliance, run.compliance.state.as_str());
        doc.add_f64(self.created, run.start_ms as f64);
        if let Some(e) = run.end_ms {
            doc.add_f64(self.ended, e as f64);
        }
        if let Some(c) = r.cost {
            for (field, v) in self
                .cost
                .iter()
                .zip([c.usd, c.idle_usd, c.idle_share, c.gpu_hours])
            {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    doc.add_f64(*field, v);
                }
            }
        }

        let keyed = |key: &str| !key.is_empty() && !key.contains(['\0', '\u{1}']);
        // MLflow reads a run's notes as the tag `mlflow.note.content` (Cairn holds them as the
        // notes, not as a tag): `tags."mlflow.note.content"` finds them.
        let mut tags: Vec<(String, OwnedValue)> = run
            .tags
            .iter()
            .filter(|(k, _)| keyed(k) && *k != NOTE_TAG)
            .map(|(k, v)| (k.clone(), OwnedValue::Str(v.clone())))
            .collect();
        if !run.notes.is_empty() {
            tags.push((NOTE_TAG.into(), OwnedValue::Str(run.notes.clone())));
        }
        if !tags.is_empty() {
            doc.add_field_value(self.tags, &OwnedValue::Object(tags));
        }
        let mut params = Vec::new();
        let mut params_num = Vec::new();
        for (k, v) in run.params.iter().filter(|(k, _)| keyed(k)) {
            params.push((k.clone(), OwnedValue::Str(v.clone())));
            if let Some(n) = ParamValue::infer(v).as_f64() {
                params_num.push((k.clone(), OwnedValue::F64(n)));
            }
        }
        if !params.is_empty() {
            doc.add_field_value(self.params, &OwnedValue::Object(params));
        }
        if !params_num.is_empty() {
            doc.add_field_value(self.params_num, &OwnedValue::Object(params_num));
        }
        let metrics: Vec<(String, OwnedValue)> = run
            .metrics
            .iter()
            .filter(|(k, _)| keyed(k))
            .map(|(k, m)| (k.clone(), OwnedValue::F64(m.last)))
            .collect();
        if !metrics.is_empty() {
            doc.add_field_value(self.metrics, &OwnedValue::Object(metrics));
        }

        self.add_evaluations(&mut doc, run);

        let l = &run.lineage;
        for (role, d) in &l.datasets {
            doc.add_text(self.dataset_name, d.name.as_deref().unwrap_or(role));
            doc.add_text(self.dataset_context, role);
            if let Some(x) = &d.digest {
                doc.add_text(self.dataset_digest, x);
            }
            if let Some(x) = &d.uri {
                doc.add_text(self.dataset_uri, x);
            }
        }
        if let Some(fs) = &l.feature_set {
            doc.add_text(self.feature_set_name, &fs.name);
            doc.add_text(self.feature_set_version, &fs.version);
        }
        if let Some(c) = &l.code {
            for (f, v) in [
                (self.code_commit, &c.commit),
                (self.code_branch, &c.branch),
                (self.code_repo, &c.repo),
            ] {
                if let Some(v) = v {
                    doc.add_text(f, v);
                }
            }
        }
        if let Some(i) = &l.infra {
            for (f, v) in [
                (self.infra_host, &i.host),
                (self.infra_os, &i.os),
                (self.infra_instance_type, &i.instance_type),
            ] {
                if let Some(v) = v {
                    doc.add_text(f, v);
                }
            }
            for g in &i.gpus {
                doc.add_text(self.infra_gpu, &g.model);
            }
        }

        // Free text: what a person would type to find a run. Keys and numbers stay out: the
        // param `label_smoothing` must not make every run mention "label smoothing".
        doc.add_text(self.text, &run.name);
        doc.add_text(self.text, r.experiment_name);
        if let Some(o) = &run.owner {
            doc.add_text(self.text, o);
        }
        if !run.notes.is_empty() {
            doc.add_text(self.text, &run.notes);
        }
        for v in run.tags.values() {
            doc.add_text(self.text, v);
        }
        for v in run.params.values() {
            if matches!(ParamValue::infer(v), ParamValue::Str(_)) {
                doc.add_text(self.text, v);
            }
        }
        if let Some(rv) = r.review {
            for (field, values) in [
                (self.review_id, &rv.ids),
                (self.review_decision, &rv.decisions),
                (self.review_confidence, &rv.confidences),
                (self.review_author, &rv.authors),
                (self.review_action_owner, &rv.open_action_owners),
            ] {
                for v in values {
                    doc.add_text(field, v);
                }
            }
            for t in &rv.text {
                doc.add_text(self.text, t);
            }
        }
        doc
    }
}

/// The run id as two u64 halves, big-endian, so (hi, lo) order is id order.
pub(crate) fn id_halves(id: cairn_model::RunId) -> (u64, u64) {
    let v = u128::from_str_radix(&id.to_hex(), 16).unwrap_or(0);
    ((v >> 64) as u64, v as u64)
}

/// Escapes a JSON key for tantivy's dotted column paths (`metrics.a\.b` is key `a.b`).
pub(crate) fn json_column(field: &str, key: &str) -> String {
    let mut out = String::with_capacity(field.len() + 1 + key.len());
    out.push_str(field);
    out.push('.');
    for c in key.chars() {
        if matches!(c, '.' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The term of a string `value` under `key` of a JSON field.
pub(crate) fn json_str_term(field: Field, key: &str, value: &str) -> Term {
    let escaped = json_column("", key);
    let mut t = Term::from_field_json_path(field, &escaped[1..], false);
    t.append_type_and_str(value);
    t
}

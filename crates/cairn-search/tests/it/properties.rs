//! Properties of the query language: printing a query and parsing it back gives the same tree,
//! and no input, however wrong, panics the parser or the engine.

use cairn_search::query::{
    Ago, Attribute, Bound, Comparison, Field, LineageField, Op, Query, Range, ReviewField,
    TimeUnit, Value,
};
use cairn_search::{SearchRequest, SortKey, parse, parse_sort};
use proptest::prelude::*;

use crate::{index_of, run_in};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_./-]{0,8}",
        "[a-zA-Z0-9 `'\"é.:()\\-]{1,8}",
        "\\PC{1,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9_-]{0,6}", "\\PC{0,10}", "[ '\"`%_a-z]{0,6}"]
}

/// Text that the parser keeps as text where an ordering comparison could make it a number.
fn non_numeric_text() -> impl Strategy<Value = String> {
    text().prop_filter("numeric text becomes a number", |t| {
        t.trim().parse::<f64>().map_or(true, |n| !n.is_finite())
    })
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e6..1e6f64,
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
        Just(0.0),
        Just(-0.0),
    ]
}

fn ago() -> impl Strategy<Value = Ago> {
    (
        0u32..100_000,
        prop_oneof![
            Just(TimeUnit::Seconds),
            Just(TimeUnit::Minutes),
            Just(TimeUnit::Hours),
            Just(TimeUnit::Days),
            Just(TimeUnit::Weeks),
        ],
    )
        .prop_map(|(amount, unit)| Ago { amount, unit })
}

fn date() -> impl Strategy<Value = String> {
    (
        1970u32..2100,
        1u32..=12,
        1u32..=28,
        proptest::option::of((0u32..24, 0u32..60)),
    )
        .prop_map(|(y, m, d, t)| match t {
            Some((h, mi)) => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}"),
            None => format!("{y:04}-{m:02}-{d:02}"),
        })
}

fn text_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        key().prop_map(Field::Param),
        key().prop_map(Field::Tag),
        prop::sample::select(vec![
            Attribute::RunId,
            Attribute::RunName,
            Attribute::Status,
            Attribute::Owner,
            Attribute::ArtifactUri,
            Attribute::Experiment,
            Attribute::ExperimentId,
        ])
        .prop_map(Field::Attribute),
        prop::sample::select(LineageField::ALL.to_vec()).prop_map(Field::Lineage),
        prop::sample::select(ReviewField::ALL.to_vec()).prop_map(Field::Review),
    ]
}

fn time_field() -> impl Strategy<Value = Field> {
    prop::sample::select(vec![Attribute::Created, Attribute::Ended]).prop_map(Field::Attribute)
}

fn ordering() -> impl Strategy<Value = Op> {
    prop::sample::select(vec![Op::Gt, Op::Ge, Op::Lt, Op::Le])
}

fn comparison() -> impl Strategy<Value = Query> {
    let any_op = prop::sample::select(vec![Op::Eq, Op::Ne, Op::Gt, Op::Ge, Op::Lt, Op::Le]);
    let null = prop::sample::select(vec![Op::IsNull, Op::IsNotNull]);
    let eq = prop::sample::select(vec![Op::Eq, Op::Ne]);
    let cmp = |field, op, value| Query::Compare(Comparison { field, op, value });
    prop_oneof![
        (key(), any_op.clone(), number()).prop_map(move |(k, op, n)| cmp(
            Field::Metric(k),
            op,
            Value::Number(n)
        )),
        (time_field(), any_op.clone(), number()).prop_map(move |(f, op, n)| cmp(
            f,
            op,
            Value::Number(n)
        )),
        (time_field(), any_op.clone(), ago()).prop_map(move |(f, op, a)| cmp(f, op, Value::Ago(a))),
        (time_field(), any_op.clone(), date()).prop_map(move |(f, op, d)| cmp(
            f,
            op,
            Value::Text(d)
        )),
        (text_field(), any_op, number()).prop_map(move |(f, op, n)| cmp(f, op, Value::Number(n))),
        (text_field(), eq, text()).prop_map(move |(f, op, t)| cmp(f, op, Value::Text(t))),
        (text_field(), ordering(), non_numeric_text()).prop_map(move |(f, op, t)| cmp(
            f,
            op,
            Value::Text(t)
        )),
        (
            text_field(),
            prop::sample::select(vec![Op::Like, Op::ILike]),
            text()
        )
            .prop_map(move |(f, op, t)| cmp(f, op, Value::Text(t))),
        (
            text_field(),
            prop::sample::select(vec![Op::In, Op::NotIn]),
            prop::collection::vec(text(), 1..4)
        )
            .prop_map(move |(f, op, l)| cmp(f, op, Value::List(l))),
        (
            prop_oneof![text_field(), time_field(), key().prop_map(Field::Metric)],
            null
        )
            .prop_map(move |(f, op)| cmp(f, op, Value::Null)),
    ]
}

fn range() -> impl Strategy<Value = Query> {
    let bound = |v: BoxedStrategy<Value>| {
        (v, any::<bool>()).prop_map(|(value, inclusive)| Bound { value, inclusive })
    };
    let num = || number().prop_map(Value::Number).boxed();
    let time = || {
        prop_oneof![
            number().prop_map(Value::Number),
            ago().prop_map(Value::Ago),
            date().prop_map(Value::Text)
        ]
        .boxed()
    };
    prop_oneof![
        (
            prop_oneof![key().prop_map(Field::Metric), text_field()],
            bound(num()),
            bound(num())
        ),
        (time_field(), bound(time()), bound(time())),
        (
            text_field(),
            bound(non_numeric_text().prop_map(Value::Text).boxed()),
            bound(non_numeric_text().prop_map(Value::Text).boxed())
        ),
    ]
    .prop_map(|(field, low, high)| Query::Range(Range { field, low, high }))
}

/// Query trees in the parser's normal form.
fn query() -> impl Strategy<Value = Query> {
    let leaf = prop_oneof![
        3 => comparison(),
        1 => range(),
        1 => text().prop_map(Query::Text),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|q| Query::Not(Box::new(q))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Query::and),
            prop::collection::vec(inner, 2..4).prop_map(Query::or),
        ]
    })
}

fn sort_key() -> impl Strategy<Value = SortKey> {
    (
        prop_oneof![
            key().prop_map(Field::Metric),
            key().prop_map(Field::Param),
            key().prop_map(Field::Tag),
            prop::sample::select(Attribute::ALL.to_vec()).prop_map(Field::Attribute),
        ],
        any::<bool>(),
    )
        .prop_map(|(field, descending)| SortKey { field, descending })
}

/// Words and symbols queries are made of, to make text that is nearly a query.
fn soup() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "metrics.acc",
        "params.lr",
        "tags.x",
        "attributes.status",
        "datasets.digest",
        "created",
        "owner",
        "and",
        "OR",
        "not",
        "in",
        "NOT IN",
        "is",
        "null",
        "like",
        "ILIKE",
        "(",
        ")",
        ",",
        ":",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "'a'",
        "\"b c\"",
        "`k`",
        "0.5",
        "-7d",
        "1e-3",
        "tag:",
        "is:running",
        "owner:bob",
        "exp:",
        "x",
        "'",
        "\"",
        "-",
        ".",
        "`",
        "é",
        "",
    ]);
    prop::collection::vec(word, 0..12).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_gives_the_same_query(q in query()) {
        let printed = q.to_string();
        let back = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(&back, &q, "{}", printed);
        prop_assert_eq!(back.to_string(), printed);
    }

    #[test]
    fn parse_print_parse_is_stable(s in soup()) {
        if let Ok(q) = parse(&s) {
            let printed = q.to_string();
            let again = parse(&printed)
                .map_err(|e| TestCaseError::fail(format!("{s} → {printed}: {e}")))?;
            prop_assert_eq!(again, q, "{} → {}", s, printed);
        }
    }

    #[test]
    fn sort_keys_print_and_parse_back(keys in prop::collection::vec(sort_key(), 1..4)) {
        let printed = keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
        prop_assert_eq!(parse_sort(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?, keys);
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_point_inside_it(s in "\\PC{0,60}") {
        match parse(&s) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1, "{e}"),
        }
        if let Err(e) = parse_sort(&s) {
            prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1, "{e}");
        }
    }

    #[test]
    fn near_queries_never_panic_the_parser(s in soup()) {
        if let Err(e) = parse(&s) {
            prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1, "{}: {}", s, e);
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any query the parser accepts runs without error on a real index.
    #[test]
    fn every_parsed_query_runs(q in query(), sort in prop::collection::vec(sort_key(), 0..3)) {
        thread_local! {
            static INDEX: cairn_search::SearchIndex = {
                let exp = cairn_model::ExperimentId::new();
                let runs: Vec<_> = (0..20).map(|i| run_in(exp, i)).collect();
                index_of(&runs, "e")
            };
        }
        let req = SearchRequest::new(q).sorted_by(sort).page(5, 3);
        INDEX.with(|idx| {
            let page = idx.search(&req).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(page.runs.len() <= 5);
            prop_assert!(page.total <= 20);
            Ok(())
        })?;
    }
}

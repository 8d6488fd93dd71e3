//! The reader on the real files from the GPU box, on files the writer makes, and on broken ones.

use super::*;
use crate::write::EventFile;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../shared/fixtures/gpu-box/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(tag, step, wall_time, value)` of every scalar `simple_value` in `events`.
fn scalars(events: &[Event]) -> Vec<(String, i64, f64, f32)> {
    let mut out = Vec::new();
    for e in events {
        if let What::Summary(values) = &e.what {
            for v in values {
                if let Data::Simple(x) = v.data {
                    out.push((v.tag.clone(), e.step, e.wall_time, x));
                }
            }
        }
    }
    out
}

#[test]
fn reads_the_real_training_scalars_exactly_as_the_csv_logged_them() {
    let events = parse(&fixture("train.tfevents")).unwrap();
    assert_eq!(events.len(), 901);
    assert_eq!(events[0].what, What::FileVersion("brain.Event:2".into()));
    let scalars = scalars(&events);
    assert_eq!(scalars.len(), 900);
    let csv = String::from_utf8(fixture("metrics.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 300);
    for (i, row) in rows.iter().enumerate() {
        let step = row[0] as i64;
        let at = &scalars[3 * i..3 * i + 3];
        let tags: Vec<&str> = at.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(tags, ["train/loss", "train/acc", "train/lr"], "row {i}");
        for (j, s) in at.iter().enumerate() {
            assert_eq!(s.1, step, "row {i}");
            // The event was written just after the CSV row, on the same clock.
            let ms = (s.2 * 1000.0).round() as i64;
            assert!(
                (0..1000).contains(&(ms - row[1] as i64)),
                "row {i}: {ms} vs {}",
                row[1]
            );
            // loss and acc were float32 `.item()`s: the same number; lr a double, kept as f32.
            assert_eq!(s.3, row[2 + j] as f32, "row {i} {}", s.0);
            if j < 2 {
                assert_eq!(f64::from(s.3), row[2 + j], "row {i} {}", s.0);
            }
        }
    }
}

#[test]
fn reads_the_real_hparams_summary() {
    let events = parse(&fixture("hparams.tfevents")).unwrap();
    assert_eq!(events.len(), 6);
    let mut plugin_values = Vec::new();
    for e in &events {
        if let What::Summary(values) = &e.what {
            for v in values {
                if let Some(p) = &v.plugin {
                    assert_eq!(p.name, "hparams");
                    plugin_values.push((v.tag.clone(), decode_hparams(&p.content).unwrap()));
                }
            }
        }
    }
    let tags: Vec<&str> = plugin_values.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tags,
        [
            "_hparams_/experiment",
            "_hparams_/session_start_info",
            "_hparams_/session_end_info"
        ]
    );
    assert_eq!(
        plugin_values[0].1,
        HParams::Experiment {
            hparams: ["lr", "weight_decay", "batch_size", "hidden", "optimizer"]
                .map(String::from)
                .to_vec(),
            metrics: vec!["hparam/final_loss".into(), "hparam/final_acc".into()],
        }
    );
    let HParams::SessionStart { hparams, .. } = &plugin_values[1].1 else {
        panic!("{:?}", plugin_values[1].1)
    };
    let mut hparams = hparams.clone();
    hparams.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        hparams,
        vec![
            ("batch_size".into(), HParamValue::Number(4096.0)),
            ("hidden".into(), HParamValue::Number(2048.0)),
            ("lr".into(), HParamValue::Number(3e-4)),
            ("optimizer".into(), HParamValue::Text("adamw".into())),
            ("weight_decay".into(), HParamValue::Number(0.01)),
        ]
    );
    assert!(matches!(
        plugin_values[2].1,
        HParams::SessionEnd {
            status: SessionStatus::Success,
            ..
        }
    ));
    let finals = scalars(&events);
    let finals: Vec<(&str, i64, f32)> = finals.iter().map(|s| (s.0.as_str(), s.1, s.3)).collect();
    assert_eq!(
        finals,
        [
            ("hparam/final_loss", 0, f32::from_bits(0x3a62_c36a)),
            ("hparam/final_acc", 0, 1.0)
        ]
    );
}

#[test]
fn what_the_writer_writes_reads_back() {
    let mut f = EventFile::new(1.5);
    f.scalar(2.0, 7, "loss", 0.25);
    f.tensor_scalar(3.0, 8, "tf2/acc", 0.75, true);
    f.tensor_scalar(3.5, 9, "tf2/acc", 0.5, false);
    f.text(4.0, 9, "notes", "hello **world**");
    f.hparams_start(
        5.0,
        &[
            ("lr", HParamValue::Number(0.1)),
            ("fast", HParamValue::Bool(true)),
        ],
    );
    f.hparams_end(6.0, SessionStatus::Failure);
    let events = parse(f.bytes()).unwrap();
    assert_eq!(events.len(), 7);
    assert_eq!(events[1].step, 7);
    let value = |i: usize| match &events[i].what {
        What::Summary(v) => v[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(value(1).data, Data::Simple(0.25));
    let Data::Tensor(t) = value(2).data else {
        panic!()
    };
    assert_eq!(t.scalar(), Some(0.75));
    assert_eq!(value(2).plugin.unwrap().name, "scalars");
    assert_eq!(value(3).plugin, None);
    let Data::Tensor(t) = value(4).data else {
        panic!()
    };
    assert_eq!(t.strings(), Some(vec!["hello **world**".to_owned()]));
    assert_eq!(t.scalar(), None);
    let end = decode_hparams(&value(6).plugin.unwrap().content).unwrap();
    assert!(matches!(
        end,
        HParams::SessionEnd {
            status: SessionStatus::Failure,
            ..
        }
    ));
}

#[test]
fn tensor_scalars_of_every_numeric_dtype() {
    let t = |dtype, content: &[u8]| Tensor {
        dtype,
        content: content.to_vec(),
        ..Default::default()
    };
    assert_eq!(t(dtype::DOUBLE, &2.5f64.to_le_bytes()).scalar(), Some(2.5));
    assert_eq!(t(dtype::INT32, &(-3i32).to_le_bytes()).scalar(), Some(-3.0));
    assert_eq!(
        t(dtype::INT64, &(1i64 << 40).to_le_bytes()).scalar(),
        Some((1u64 << 40) as f64)
    );
    assert_eq!(t(dtype::HALF, &0x3c00u16.to_le_bytes()).scalar(), Some(1.0));
    assert_eq!(
        t(dtype::HALF, &0xc000u16.to_le_bytes()).scalar(),
        Some(-2.0)
    );
    assert_eq!(t(dtype::FLOAT, &[1, 2]).scalar(), None, "too short");
    let two = Tensor {
        dtype: dtype::FLOAT,
        shape: vec![2],
        float_val: vec![1.0, 2.0],
        ..Default::default()
    };
    assert_eq!(two.scalar(), None, "not one element");
}

#[test]
fn a_bad_crc_names_the_record_and_both_sums() {
    let mut f = EventFile::new(1.0);
    f.scalar(2.0, 1, "loss", 0.5);
    let second = f.bytes().len() as u64;
    f.scalar(3.0, 2, "loss", 0.25);
    let mut bytes = f.into_bytes();
    // A bit flipped in the third record's data.
    let at = second as usize + 20;
    bytes[at] ^= 0x10;
    let err = parse(&bytes).unwrap_err();
    assert_eq!(err.offset, second);
    assert!(matches!(err.kind, ErrorKind::DataCrc { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("at byte {second}: the record's data CRC"))
    );
    // The length's CRC.
    bytes[at] ^= 0x10;
    bytes[second as usize + 9] ^= 1;
    let err = parse(&bytes).unwrap_err();
    assert_eq!(err.offset, second);
    assert!(matches!(err.kind, ErrorKind::LengthCrc { .. }), "{err}");
}

#[test]
fn truncation_at_every_byte_is_an_error_at_the_last_records_start() {
    let mut f = EventFile::new(1.0);
    f.scalar(2.0, 1, "loss", 0.5);
    let last = f.bytes().len();
    f.scalar(3.0, 2, "loss", 0.25);
    let bytes = f.into_bytes();
    for cut in last + 1..bytes.len() {
        let err = parse(&bytes[..cut]).unwrap_err();
        assert_eq!(err.offset, last as u64, "cut at {cut}");
        assert!(
            matches!(err.kind, ErrorKind::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
    assert_eq!(parse(&bytes[..last]).unwrap().len(), 2);
    assert_eq!(parse(&[]).unwrap(), vec![]);
}

#[test]
fn garbage_and_huge_lengths_are_refused_at_byte_zero() {
    let err = parse(b"step,loss\n0,1.0\n1,0.5\n").unwrap_err();
    assert_eq!(err.offset, 0);
    assert!(matches!(err.kind, ErrorKind::LengthCrc { .. }), "{err}");
    // A length whose CRC is right but which no summary reaches.
    let len = (MAX_RECORD + 1).to_le_bytes();
    let mut bytes = len.to_vec();
    bytes.extend_from_slice(&crc32c::masked(&len).to_le_bytes());
    let err = parse(&bytes).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::TooLong {
            len: MAX_RECORD + 1,
            max: MAX_RECORD
        }
    );
}

#[test]
fn a_record_that_is_not_an_event_is_malformed_at_its_offset() {
    let mut f = EventFile::new(1.0);
    let at = f.bytes().len() as u64;
    // Field 1 (wall_time) as a varint, then a length running past the end.
    f.push(&[0x08, 0x01]);
    let err = parse(f.bytes()).unwrap_err();
    assert_eq!(err.offset, at);
    assert_eq!(
        err.to_string(),
        format!("at byte {at}: malformed Event: Event.wall_time has the wrong wire type")
    );
    let mut g = EventFile::new(1.0);
    g.push(&[0x2a, 0x05, 0x0a]);
    assert!(
        parse(g.bytes())
            .unwrap_err()
            .to_string()
            .contains("runs past the end"),
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        // 256 cases by default; PROPTEST_CASES=N runs more.
        #![proptest_config(ProptestConfig::default())]

        /// Any single flipped bit of the real file is caught, at the start of its record.
        #[test]
        fn every_flipped_bit_is_caught_at_its_record(bit in 0usize..43_243 * 8) {
            let mut bytes = fixture("train.tfevents");
            let starts: Vec<u64> = records(&bytes).map(|r| r.unwrap().offset).collect();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let err = parse(&bytes).unwrap_err();
            let record = starts.iter().rev().find(|&&s| s <= (bit / 8) as u64).unwrap();
            prop_assert_eq!(err.offset, *record, "{}", err);
        }

        /// Scalars written come back bit for bit (NaN payloads, infinities, -0.0 included),
        /// with their steps, times and tags.
        #[test]
        fn scalars_round_trip_bit_exactly(
            points in proptest::collection::vec(
                (any::<i64>(), 0.0f64..1e10, any::<u32>(), "[a-z/_ .]{1,20}", any::<bool>()),
                0..50,
            )
        ) {
            let mut f = EventFile::new(1.0);
            for (step, wall, bits, tag, tf2) in &points {
                if *tf2 {
                    f.tensor_scalar(*wall, *step, tag, f32::from_bits(*bits), true);
                } else {
                    f.scalar(*wall, *step, tag, f32::from_bits(*bits));
                }
            }
            let events = parse(f.bytes()).unwrap();
            prop_assert_eq!(events.len(), points.len() + 1);
            for (e, (step, wall, bits, tag, _)) in events[1..].iter().zip(&points) {
                prop_assert_eq!(e.step, *step);
                prop_assert_eq!(e.wall_time.to_bits(), wall.to_bits());
                let What::Summary(values) = &e.what else { panic!("{e:?}") };
                prop_assert_eq!(&values[0].tag, tag);
                let got = match &values[0].data {
                    Data::Simple(x) => x.to_bits(),
                    Data::Tensor(t) => (t.scalar().unwrap() as f32).to_bits(),
                    other => panic!("{other:?}"),
                };
                // A NaN through f64 keeps its payload's top bits and sets the quiet bit.
                if f32::from_bits(*bits).is_nan() {
                    prop_assert!(f32::from_bits(got).is_nan());
                } else {
                    prop_assert_eq!(got, *bits);
                }
            }
        }

        /// Past the CRC gate: any payload framed with good CRCs is an event or a malformed
        /// record at its offset (the decoder itself, which random bytes rarely reach).
        #[test]
        fn any_payload_behind_good_crcs_decodes_or_is_malformed(
            payload in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let mut f = EventFile::new(1.0);
            let at = f.bytes().len() as u64;
            f.push(&payload);
            match parse(f.bytes()) {
                Ok(events) => prop_assert_eq!(events.len(), 2),
                Err(e) => {
                    prop_assert_eq!(e.offset, at);
                    prop_assert!(matches!(e.kind, ErrorKind::Malformed(_)), "{}", e);
                }
            }
            if let Err(m) = decode_hparams(&payload) {
                prop_assert!(!m.is_empty());
            }
        }

        /// The real files' events with one byte changed and framed again with good CRCs: each
        /// decodes (to something) or is malformed, and the hparams inside never panic.
        #[test]
        fn real_events_changed_behind_good_crcs(
            hparams in any::<bool>(),
            pick in any::<usize>(),
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let data = fixture(if hparams { "hparams.tfevents" } else { "train.tfevents" });
            let payloads: Vec<&[u8]> = records(&data).map(|r| r.unwrap().data).collect();
            let mut payload = payloads[pick % payloads.len()].to_vec();
            let k = at % payload.len();
            payload[k] = byte;
            match parse(&write::record(&payload)) {
                Ok(events) => {
                    for e in events {
                        if let What::Summary(values) = e.what {
                            for v in values {
                                if let Some(p) = v.plugin
                                    && let Err(m) = decode_hparams(&p.content)
                                {
                                    prop_assert!(!m.is_empty());
                                }
                            }
                        }
                    }
                }
                Err(e) => prop_assert!(matches!(e.kind, ErrorKind::Malformed(_)), "{}", e),
            }
        }

        /// Arbitrary bytes never panic, and an error points inside them.
        #[test]
        fn arbitrary_bytes_are_an_error_inside_them(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Err(e) = parse(&data) {
                prop_assert!((e.offset as usize) < data.len());
            }
        }
    }
}

//! One handle, many threads: reads never wait for a write in progress.

use std::sync::mpsc;
use std::time::Duration;

use cairn_core::{DemoOptions, SearchRequest};

use crate::{start, workspace};

#[test]
fn reads_go_on_while_a_write_holds_the_writer() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]);
    let (entered, wait_entered) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let writer = {
        let ws = ws.clone();
        std::thread::spawn(move || {
            let mut first = true;
            // The demo reports progress from inside its write: the first report parks it there,
            // holding the writer, until the test releases it.
            ws.generate_demo(
                &DemoOptions {
                    runs: 60,
                    steps: Some(5),
                    seed: 1,
                },
                &mut |_, _| {
                    if first {
                        first = false;
                        entered.send(()).unwrap();
                        wait_release.recv().unwrap();
                    }
                },
            )
        })
    };
    wait_entered
        .recv_timeout(Duration::from_secs(60))
        .expect("the write started");
    // With the writer held, reads answer (a handle that locked for every call would block here
    // forever, and the test would time out).
    let (done, wait_done) = mpsc::channel();
    {
        let ws = ws.clone();
        std::thread::spawn(move || {
            let run = ws.run(id).map(|r| r.run.params["lr"].clone());
            let page = ws.search(&SearchRequest::default()).map(|p| p.total);
            let exps = ws.experiments().map(|e| e.len());
            done.send((run, page, exps)).unwrap();
        });
    }
    let (run, page, exps) = wait_done
        .recv_timeout(Duration::from_secs(60))
        .expect("reads answered while the writer was held");
    assert_eq!(run.unwrap(), "0.1");
    assert!(page.unwrap() >= 1);
    assert!(exps.unwrap() >= 1);
    release.send(()).unwrap();
    let report = writer.join().unwrap().unwrap();
    assert_eq!(report.runs, 60);
}

#[test]
fn eight_threads_read_through_one_handle() {
    let (_d, ws) = workspace();
    let ids: Vec<_> = (0..16)
        .map(|i| start(&ws, "e", &[("i", &i.to_string())]))
        .collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let ws = ws.clone();
            let ids = ids.clone();
            s.spawn(move || {
                for (i, id) in ids.iter().enumerate() {
                    assert_eq!(
                        ws.run(*id).unwrap().run.params["i"],
                        i.to_string(),
                        "thread {t}"
                    );
                    let page = ws
                        .search(&SearchRequest {
                            q: Some(format!("params.i = '{i}'")),
                            ..Default::default()
                        })
                        .unwrap();
                    assert_eq!(page.total, 1, "thread {t}");
                }
            });
        }
    });
}

//! Admin and compliance query benchmarks (issue 5's speed targets), through the control socket.
//!
//! `cargo bench --bench queries [-- --records N --store DIR]` builds (once; reused when DIR
//! holds it) a store of N recordings (default 1,000,000) spread over a year, each with a full
//! analysis report (the demo stereo call's, with scores, flags, agents, queues and consent
//! varied), then serves it on a control socket exactly as the daemon does
//! (`control::bind` + `control::serve`) and times, as a client over the socket:
//! - `worst --since 30d --limit 20` (target <= 100 ms),
//! - `kpi --since 30d --by day` (target <= 2 s),
//! - `report consent --since 90d` (target <= 3 s),
//! - `show ID` (a recording with its audit entries, from the audit index),
//!
//! each the best of 5 through the library client, and once more as the real `callwarden`
//! command (process start, socket, rendering) when the binary is built.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callwarden::config::Config;
use callwarden::control::{self, Shared};
use callwarden::kpi::GroupBy;
use callwarden::query::{ListQuery, ReportKind, Request, Sort, Window};
use callwarden::store::Store;

#[path = "common/big_store.rs"]
mod big_store;

use big_store::DAY_MS;

#[path = "common/args.rs"]
mod args;

use args::arg;

fn time(what: &str, target_s: f64, socket: &Path, request: &Request) {
    let mut best = f64::MAX;
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let answer = control::call(socket, request, Duration::from_secs(600)).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        size = serde_json::to_vec(&answer).unwrap().len();
    }
    println!(
        "{what}: {:.1} ms through the socket (best of 5; answer {size} bytes; target <= {} ms)",
        best * 1000.0,
        target_s * 1000.0
    );
}

fn cli(what: &str, socket: &Path, args: &[&str]) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/callwarden");
    if !bin.exists() {
        return;
    }
    let t = Instant::now();
    let out = std::process::Command::new(&bin)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{what}: {:.1} ms as `callwarden {}` (one run, process start and rendering included)",
        t.elapsed().as_secs_f64() * 1000.0,
        args.join(" ")
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no work to do.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let n: u64 = arg("--records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (dir, now) = big_store::open_or_build(n, arg("--store"));
    let socket = dir.with_extension("sock");
    let group = String::from_utf8(
        std::process::Command::new("id")
            .arg("-gn")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut config = Config::default();
    config.store.path = dir.clone();
    config.control.socket = socket.clone();
    config.control.auditor_groups = vec![group.trim().to_string()];
    let store = Arc::new(Store::open(&dir).unwrap());
    // The server as the daemon runs it, on a runtime of its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Mutex::new(Shared::new(
        Arc::new(config.clone()),
        Default::default(),
    )));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = control::bind(&config.control).unwrap();
            ready_tx.send(()).unwrap();
            control::serve(listener, store, shared, std::future::pending()).await;
        })
    });
    ready_rx.recv().unwrap();

    let since = |days: i64| Window {
        from_ms: Some(now - days * DAY_MS),
        until_ms: None,
    };
    time(
        "worst --since 30d --limit 20",
        0.1,
        &socket,
        &Request::List(ListQuery {
            window: since(30),
            sort: Sort::Score,
            limit: 20,
            ..ListQuery::default()
        }),
    );
    time(
        "kpi --since 30d --by day",
        2.0,
        &socket,
        &Request::Kpi {
            window: since(30),
            by: GroupBy::Day,
        },
    );
    time(
        "report consent --since 90d",
        3.0,
        &socket,
        &Request::Report {
            kind: ReportKind::Consent,
            window: since(90),
        },
    );
    time(
        "show ID",
        0.1,
        &socket,
        &Request::Show {
            target: callwarden::query::Target::Id((n / 2).max(1)),
        },
    );
    let at = callwarden::policy::fmt_ms(now);
    cli(
        "worst",
        &socket,
        &["worst", "--since", "30d", "--limit", "20", "--now", &at],
    );
    cli(
        "kpi",
        &socket,
        &["kpi", "--since", "30d", "--by", "day", "--now", &at],
    );
    cli(
        "report consent",
        &socket,
        &["report", "consent", "--since", "90d", "--now", &at],
    );
    let _ = std::fs::remove_file(&socket);
}

//! A tiny `direct` run of the whole system (the all-in-one `astral`, built in this test's
//! own profile): every message sent is delivered once, none lost, none refused.

#![allow(clippy::unwrap_used)] // a test fails loudly

use astral_bench::scenarios::Timing;
use astral_bench::scenarios::direct::{self, Direct};
use astral_bench::system::{Mode, Options};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_pairs_in_a_closed_loop_get_every_message_once() {
    let Some(bin_dir) = binaries() else { return };
    let options = Options {
        mode: Mode::AllInOne,
        bin_dir,
        gateway_env: Vec::new(),
    };
    let run = Direct {
        pairs: 10,
        rate: None,
        timing: Timing {
            warmup: Duration::ZERO,
            duration: Duration::from_secs(2),
            drain: Duration::from_secs(5),
        },
    };
    let report = direct::run(&options, &run).await.unwrap();
    let load = report.load.clone().unwrap();
    println!("{}", report.table());
    // Each pair sent (how many depends on how busy the machine is: 42 under the whole suite).
    assert!(load.sent >= 10, "{load:?}");
    assert_eq!(load.delivered, load.sent, "{load:?}");
    assert_eq!(load.acknowledged, load.sent, "{load:?}");
    assert_eq!((load.lost, load.duplicated), (0, 0), "{load:?}");
    assert!(load.errors.is_empty(), "{load:?}");
    assert_eq!(load.latency.count, load.delivered);
    assert!(
        report
            .processes
            .iter()
            .any(|p| p.process == "astral" && p.rss_mib > 0.0)
    );
}

/// The directory of this profile's binaries, if `astral` is built there (`cargo build
/// --workspace --bins`; `cargo test --workspace` builds it). Under CI=1 it must be.
fn binaries() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_astral-bench"))
        .parent()
        .unwrap()
        .to_path_buf();
    if dir.join("astral").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: run `cargo build --workspace --bins`",
        dir.join("astral").display()
    );
    eprintln!(
        "skipped: {} is missing (cargo build --workspace --bins)",
        dir.join("astral").display()
    );
    None
}

//! `astral-bench`: starts Astral from the built binaries and puts it under load.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = astral_bench::Cli::parse();
    let json = cli.command.json();
    // Interrupted, the run is dropped: what it started is killed, its databases dropped.
    let report = tokio::select! {
        report = astral_bench::run(&cli.command) => report?,
        () = interrupted() => anyhow::bail!("interrupted"),
    };
    if let Some(report) = report {
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.table());
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! `astral-bench`: the whole system under load, driven as users drive it (HTTP and
//! WebSocket only), started from the built binaries; `docs/benchmarks.md`, "The whole
//! system under load", has the commands and the figures.

pub mod args;
pub mod client;
pub mod histogram;
pub mod holder;
pub mod measure;
pub mod nonce;
pub mod population;
pub mod receivers;
pub mod report;
pub mod scenarios;
pub mod senders;
pub mod system;
pub mod tally;

pub use args::{Cli, Command};
pub use report::Report;

/// Runs one scenario (or, for `hold`, a holder process until it is killed).
pub async fn run(command: &Command) -> anyhow::Result<Option<Report>> {
    match command {
        Command::Direct(args) => scenarios::direct::run(&args.common.options()?, &args.direct())
            .await
            .map(Some),
        Command::Group(args) => scenarios::group::run(&args.common.options()?, &args.group())
            .await
            .map(Some),
        Command::Idle(args) => scenarios::idle::run(&args.common.options()?, &args.connections())
            .await
            .map(Some),
        Command::Storm(args) => scenarios::storm::run(&args.common.options()?, &args.connections())
            .await
            .map(Some),
        Command::Hold(hold) => holder::run(hold.clone()).await.map(|()| None),
    }
}

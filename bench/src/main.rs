//! `astral-bench`: starts Astral from the built binaries and puts it under load.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = astral_bench::Cli::parse();
    let json = cli.command.json();
    if let Some(report) = astral_bench::run(&cli.command).await? {
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.table());
        }
    }
    Ok(())
}

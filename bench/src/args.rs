//! The command line: one subcommand per scenario, and the hidden `hold` of the holder
//! processes.

use crate::holder::Hold;
use crate::scenarios::Timing;
use crate::scenarios::direct::Direct;
use crate::scenarios::fleet::Connections;
use crate::scenarios::group::Group;
use crate::system::{self, Mode};
use anyhow::Context as _;
use std::path::PathBuf;
use std::time::Duration;

/// Astral's whole-system load generator: starts the system from the built binaries, drives
/// it over HTTP and WebSocket as users do, and reports what it measured.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pairs of friends: one sends over HTTP into their direct chat, the other's socket
    /// receives it.
    Direct(LoadArgs),
    /// Groups: every member sends; each message reaches every other member's socket.
    Group(GroupArgs),
    /// Idle identified connections: the gateway's memory per connection, one event to all.
    Idle(ConnectionArgs),
    /// A reconnect storm: the gateway is killed and restarted under K connections.
    Storm(ConnectionArgs),
    /// A holder process of the idle and storm scenarios (started by them).
    #[command(hide = true)]
    Hold(Hold),
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// How to run the system.
    #[arg(long, value_enum, default_value = "distributed")]
    pub mode: Mode,
    /// Where the binaries are: the directory of this one unless given (`target/release`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Pacing {
    /// Messages a second in all (open loop); closed loop without it.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds after the end that deliveries may still take; later, they are lost.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pacing: Pacing,
    /// Sender/receiver pairs (a user may send 20 a second: use enough of them).
    #[arg(long, default_value_t = 1000)]
    pub pairs: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pacing: Pacing,
    #[arg(long, default_value_t = 10)]
    pub groups: usize,
    /// Members per group, every one of them sending.
    #[arg(long, default_value_t = 50)]
    pub group_size: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 15_000)]
    pub connections: usize,
    /// Connections per holder process (a process may hold at most 20,000 open files).
    #[arg(long, default_value_t = 5_000)]
    pub per_process: usize,
    /// Connections per client address (127.0.0.2 and up; a gateway allows 256).
    #[arg(long, default_value_t = 200)]
    pub per_address: usize,
    /// Idle: once every connection is identified, watch this many seconds with nothing
    /// sent (presence's steady cost: bus messages, each process's CPU).
    #[arg(long, default_value_t = 0)]
    pub idle_secs: u64,
}

impl Command {
    pub fn json(&self) -> bool {
        match self {
            Self::Direct(args) => args.common.json,
            Self::Group(args) => args.common.json,
            Self::Idle(args) | Self::Storm(args) => args.common.json,
            Self::Hold(_) => false,
        }
    }
}

impl Common {
    pub fn options(&self) -> anyhow::Result<system::Options> {
        let bin_dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("the directory of astral-bench")?
                .to_path_buf(),
        };
        Ok(system::Options {
            mode: self.mode,
            bin_dir,
            gateway_env: Vec::new(),
        })
    }
}

impl Pacing {
    fn timing(&self) -> Timing {
        Timing {
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.duration),
            drain: Duration::from_secs_f64(self.drain),
        }
    }
}

impl LoadArgs {
    pub fn direct(&self) -> Direct {
        Direct {
            pairs: self.pairs,
            rate: self.pacing.rate,
            timing: self.pacing.timing(),
        }
    }
}

impl GroupArgs {
    pub fn group(&self) -> Group {
        Group {
            groups: self.groups,
            size: self.group_size,
            rate: self.pacing.rate,
            timing: self.pacing.timing(),
        }
    }
}

impl ConnectionArgs {
    pub fn connections(&self) -> Connections {
        Connections {
            connections: self.connections,
            per_process: self.per_process,
            per_address: self.per_address,
            idle_secs: self.idle_secs,
        }
    }
}

//! Mechanisms shared by every Astral process. No business rules live here.

pub mod authenticator;
pub mod batch;
pub mod bus;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod grpc;
pub mod guard;
pub mod ids;
pub mod listen;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod plane;
pub mod ratelimit;
pub mod shutdown;
pub mod signing;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod tls;
pub mod tokens;

pub use bus::EventBus;
pub use error::{Error, Result};
pub use listen::listen;
pub use shutdown::shutdown_signal;

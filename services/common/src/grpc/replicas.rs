//! The replicas of one service and how each has been answering: calls in flight, failures
//! in a row, ejections (outlier detection) and silence.

use std::time::{Duration, Instant};

/// A replica with calls waiting that has answered nothing for this long is passed over
/// (a stopped or frozen process still accepts connections; only its silence shows).
pub const STALLED_AFTER: Duration = Duration::from_secs(1);

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Calls failing in a row (unreachable, reset) that eject a replica.
const FAILURES_TO_EJECT: u32 = 3;
/// How long a first ejection lasts; each ejection in a row lasts twice the one before, up
/// to [`LONGEST_EJECTION`].
const FIRST_EJECTION: Duration = Duration::from_secs(1);
const LONGEST_EJECTION: Duration = Duration::from_secs(30);

/// The replicas of one service, as last found.
pub(super) struct Replicas {
    list: std::sync::RwLock<std::sync::Arc<Vec<std::sync::Arc<Replica>>>>,
    /// Counts the changes of the list, for calls waiting for a first replica.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            list: std::sync::RwLock::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// One replica: its connection, the calls it has in flight and how it has been answering.
pub(super) struct Replica {
    pub(super) address: String,
    pub(super) channel: tonic::transport::Channel,
    in_flight: std::sync::atomic::AtomicUsize,
    health: std::sync::Mutex<Health>,
}

struct Health {
    /// Calls failed in a row.
    failures: u32,
    /// Ejections in a row (reset by an answer).
    ejections: u32,
    ejected_until: Option<Instant>,
    /// When it last answered a call, or started being asked after it had nothing to do.
    last_progress: Instant,
}

impl Replicas {
    pub(super) fn one(channel: tonic::transport::Channel) -> std::sync::Arc<Self> {
        let replicas = Self::default();
        *replicas.write() = std::sync::Arc::new(vec![std::sync::Arc::new(Replica::new(
            "unix socket".into(),
            channel,
        ))]);
        std::sync::Arc::new(replicas)
    }

    pub(super) fn read(&self) -> std::sync::Arc<Vec<std::sync::Arc<Replica>>> {
        self.list
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::sync::Arc<Vec<std::sync::Arc<Replica>>>> {
        self.list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the replicas those at `addresses`, keeping the ones already known (with their
    /// connections and history) and connecting to the new ones.
    pub(super) fn set(
        &self,
        addresses: &std::collections::HashSet<std::net::SocketAddr>,
        connect: impl Fn(std::net::SocketAddr) -> Option<tonic::transport::Channel>,
    ) {
        let known = self.read();
        let mut list = Vec::with_capacity(addresses.len());
        for address in addresses {
            let name = address.to_string();
            match known.iter().find(|replica| replica.address == name) {
                Some(replica) => list.push(replica.clone()),
                None => list.extend(
                    connect(*address)
                        .map(|channel| std::sync::Arc::new(Replica::new(name, channel))),
                ),
            }
        }
        list.sort_by(|a, b| a.address.cmp(&b.address));
        *self.write() = std::sync::Arc::new(list);
        self.changes.send_modify(|count| *count += 1);
    }

    /// A replica for the next call, waiting for one to be found (a service starting) until
    /// `deadline`.
    pub(super) async fn wait_pick(
        &self,
        deadline: tokio::time::Instant,
    ) -> Option<std::sync::Arc<Replica>> {
        let mut changes = self.changes.subscribe();
        loop {
            if let Some(replica) = self.pick() {
                return Some(replica);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// The replica for the next call: the less busy of two picked at random among those not
    /// ejected or stalled (among all of them if none is left).
    pub(super) fn pick(&self) -> Option<std::sync::Arc<Replica>> {
        use rand::Rng as _;
        let list = self.read();
        let now = Instant::now();
        let healthy: Vec<&std::sync::Arc<Replica>> = list
            .iter()
            .filter(|replica| replica.eligible(now))
            .collect();
        let pool = if healthy.is_empty() {
            list.iter().collect()
        } else {
            healthy
        };
        let mut random = rand::thread_rng();
        match pool.len() {
            0 => None,
            1 => Some(pool[0].clone()),
            n => {
                let first = random.gen_range(0..n);
                let mut second = random.gen_range(0..n - 1);
                if second >= first {
                    second += 1;
                }
                let (a, b) = (pool[first], pool[second]);
                Some(if b.load() < a.load() {
                    b.clone()
                } else {
                    a.clone()
                })
            }
        }
    }
}

impl Replica {
    pub(super) fn new(address: String, channel: tonic::transport::Channel) -> Self {
        Self {
            address,
            channel,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            health: std::sync::Mutex::new(Health {
                failures: 0,
                ejections: 0,
                ejected_until: None,
                last_progress: Instant::now(),
            }),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn load(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Neither ejected nor silent with calls waiting.
    pub(super) fn eligible(&self, now: Instant) -> bool {
        let health = self.health();
        let ejected = health.ejected_until.is_some_and(|until| until > now);
        let stalled = self.load() > 0 && now.duration_since(health.last_progress) > STALLED_AFTER;
        !ejected && !stalled
    }

    /// A call starts; it counts as in flight until the returned guard is dropped.
    pub(super) fn start(self: &std::sync::Arc<Self>) -> InFlight {
        let before = self
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if before == 0 {
            // Idle until now: its silence counts from this call on.
            self.health().last_progress = Instant::now();
        }
        InFlight(self.clone())
    }

    pub(super) fn answered(&self) {
        let mut health = self.health();
        health.failures = 0;
        health.ejections = 0;
        health.ejected_until = None;
        health.last_progress = Instant::now();
    }

    /// A call failed: `timed_out` (no answer within its deadline) ejects at once, other
    /// failures after [`FAILURES_TO_EJECT`] in a row.
    pub(super) fn failed(&self, timed_out: bool) {
        let mut health = self.health();
        if health
            .ejected_until
            .is_some_and(|until| until > Instant::now())
        {
            // Calls that were on their way when it was ejected: nothing new.
            return;
        }
        health.failures += 1;
        if !timed_out && health.failures < FAILURES_TO_EJECT {
            return;
        }
        let factor = 1_u32 << health.ejections.min(5);
        let ejection = (FIRST_EJECTION * factor).min(LONGEST_EJECTION);
        health.ejections += 1;
        health.failures = 0;
        health.ejected_until = Some(Instant::now() + ejection);
        metrics::counter!("astral_grpc_ejections_total").increment(1);
        tracing::warn!(replica = %self.address, ?ejection, timed_out, "a replica is left out of the balancer for a while");
    }
}

/// A call in flight on a replica.
pub(super) struct InFlight(pub(super) std::sync::Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A call that got no answer within its deadline: the replica is ejected for a while.
pub(super) fn no_answer(replica: &Replica, deadline: Duration) -> BoxError {
    replica.failed(true);
    let message = format!("{} did not answer within {deadline:?}", replica.address);
    tonic::Status::deadline_exceeded(message).into()
}

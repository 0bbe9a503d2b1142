//! The event bus: NATS in production, an in-process bus in the all-in-one binary.

use crate::guard::Role;
use crate::signing::{EventSigner, EventTrust, SIGNATURE_HEADER};
use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A stream of what is published on one subject.
pub type Subscription = BoxStream<'static, Delivery>;

/// One event as a subscriber receives it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub payload: Bytes,
    /// The publisher's trace context (carried in NATS headers as `traceparent`), so the
    /// subscriber's work joins the trace of the action that caused the event.
    pub trace: crate::telemetry::Context,
}

/// Where events are published and subscribed to. Cheap to clone.
#[derive(Clone)]
pub enum EventBus {
    Nats {
        client: async_nats::Client,
        /// Counts (re)connections, so subscribers can catch up on what they missed meanwhile.
        connections: tokio::sync::watch::Receiver<u64>,
        /// Signs what this process publishes (a publishing service's key).
        signer: Option<Arc<EventSigner>>,
        /// What a subscription delivers: only events these keys signed, of the kinds their
        /// roles publish. `None` delivers everything (development without secrets).
        trust: Option<Arc<EventTrust>>,
    },
    Local(LocalBus),
}

/// How a process connects to NATS: as its role (nkey), signing what it publishes, verifying
/// what it receives.
#[derive(Default)]
pub struct NatsOptions {
    /// The nkey seed (`SU…`) this process authenticates with; `None`: anonymous.
    pub nkey: Option<String>,
    pub signer: Option<EventSigner>,
    pub trust: Option<EventTrust>,
}

impl NatsOptions {
    /// From the settings of a process of `role`: the nkey, the signing key (a publishing
    /// service) and the trusted keys (a subscriber) are each required, unless
    /// `insecure_dev` (then whatever is missing is left out, with a warning).
    pub fn load(
        args: &crate::config::BusArgs,
        role: Role,
        insecure_dev: bool,
    ) -> anyhow::Result<Self> {
        let required = |setting: &str, value: &Option<std::path::PathBuf>| match value {
            Some(path) => Ok(Some(path.clone())),
            None if insecure_dev => {
                tracing::warn!("{setting} is not set (ASTRAL_INSECURE_DEV): development only");
                Ok(None)
            }
            None => Err(anyhow::anyhow!(
                "{setting} is not set: give this process its role's secrets (`astral-admin secrets init DIR`, then the variables of DIR/{role}.env), or set ASTRAL_INSECURE_DEV=1 for development"
            )),
        };
        let nkey = required("ASTRAL_NATS_NKEY", &args.nats_nkey)?
            .map(|path| read_nkey(&path))
            .transpose()?;
        let signer = if role.signs_events() {
            required("ASTRAL_EVENT_SIGNING_KEY", &args.event_signing_key)?
                .map(|path| EventSigner::load(&path))
                .transpose()?
        } else {
            None
        };
        let trust = if role.verifies_events() {
            required("ASTRAL_EVENT_KEYS", &args.event_keys)?
                .map(|path| EventTrust::load(&path))
                .transpose()?
        } else {
            None
        };
        Ok(Self {
            nkey,
            signer,
            trust,
        })
    }
}

fn read_nkey(path: &std::path::Path) -> anyhow::Result<String> {
    let seed = std::fs::read_to_string(path)
        .with_context(|| format!("ASTRAL_NATS_NKEY: cannot read {}", path.display()))?;
    let seed = seed.trim();
    anyhow::ensure!(
        seed.starts_with("SU"),
        "ASTRAL_NATS_NKEY: {} holds no NATS user nkey seed (SU…)",
        path.display()
    );
    Ok(seed.to_owned())
}

impl EventBus {
    /// Connects to NATS at `url` anonymously, publishing unsigned and delivering everything
    /// (the all-in-one on NATS, benchmarks, development).
    pub async fn nats(url: &str) -> anyhow::Result<Self> {
        Self::nats_with(url, NatsOptions::default()).await
    }

    /// Connects to NATS at `url` (retrying until it answers, and reconnecting whenever the
    /// connection drops).
    pub async fn nats_with(url: &str, options: NatsOptions) -> anyhow::Result<Self> {
        let (connected, connections) = tokio::sync::watch::channel(0);
        let connect = match options.nkey {
            Some(seed) => async_nats::ConnectOptions::with_nkey(seed),
            None => async_nats::ConnectOptions::new(),
        };
        let client = connect
            .name("astral")
            .retry_on_initial_connect()
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| {
                let connected = connected.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            metrics::gauge!("astral_nats_connected").set(1.0);
                            connected.send_modify(|count| *count += 1)
                        }
                        async_nats::Event::Disconnected => {
                            metrics::gauge!("astral_nats_connected").set(0.0);
                            metrics::counter!("astral_nats_reconnects_total").increment(1);
                            tracing::warn!("NATS connection lost; reconnecting")
                        }
                        _ => {}
                    }
                }
            })
            .connect(url)
            .await
            .with_context(|| format!("connect to NATS at {url}"))?;
        Ok(Self::Nats {
            client,
            connections,
            signer: options.signer.map(Arc::new),
            trust: options.trust.map(Arc::new),
        })
    }

    /// Changes each time the bus (re)connects: a subscriber that must not miss events reloads
    /// what it keeps when this changes. The in-process bus never disconnects.
    pub fn connections(&self) -> tokio::sync::watch::Receiver<u64> {
        match self {
            Self::Nats { connections, .. } => connections.clone(),
            Self::Local(bus) => bus.connections.subscribe(),
        }
    }

    /// Whether the bus is connected now (the in-process bus always is).
    pub fn is_connected(&self) -> bool {
        match self {
            Self::Nats { client, .. } => {
                client.connection_state() == async_nats::connection::State::Connected
            }
            Self::Local(_) => true,
        }
    }

    /// A fresh in-process bus.
    pub fn local() -> Self {
        Self::Local(LocalBus::default())
    }

    /// Publishes `payload` on `subject`, with the current trace context. Delivery is at
    /// most once (NATS core semantics).
    pub async fn publish(&self, subject: String, payload: Bytes) -> anyhow::Result<()> {
        self.publish_on(&[subject], payload).await
    }

    /// Publishes one event's `payload` on each of `subjects` (one signature covers them all),
    /// with the current trace context; an error if any subject did not take it.
    pub async fn publish_on(&self, subjects: &[String], payload: Bytes) -> anyhow::Result<()> {
        for subject in subjects {
            let kind = subject.split('.').next().unwrap_or_default().to_owned();
            metrics::counter!("astral_events_published_total", "subject" => kind).increment(1);
        }
        match self {
            Self::Nats { client, signer, .. } => {
                let mut signatures = signer
                    .as_ref()
                    .map(|signer| signer.sign_for(subjects, &payload))
                    .unwrap_or_default()
                    .into_iter();
                let mut failed = None;
                for subject in subjects {
                    let mut headers = async_nats::HeaderMap::new();
                    crate::telemetry::inject(&mut NatsHeaders(&mut headers));
                    if let Some(signature) = signatures.next() {
                        headers.insert(SIGNATURE_HEADER, signature.as_str());
                    }
                    let published = client
                        .publish_with_headers(subject.clone(), headers, payload.clone())
                        .await;
                    if let Err(error) = published {
                        failed = Some(
                            anyhow::Error::new(error)
                                .context(format!("publish to NATS on {subject}")),
                        );
                    }
                }
                failed.map_or(Ok(()), Err)
            }
            Self::Local(bus) => {
                let trace =
                    tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
                for subject in subjects {
                    bus.publish(
                        subject,
                        Delivery {
                            payload: payload.clone(),
                            trace: trace.clone(),
                        },
                    );
                }
                Ok(())
            }
        }
    }

    /// Subscribes to `subject`; the subscription ends when the stream is dropped.
    pub async fn subscribe(&self, subject: String) -> anyhow::Result<Subscription> {
        match self {
            Self::Nats { client, trust, .. } => {
                let subscriber = client
                    .subscribe(subject)
                    .await
                    .context("subscribe on NATS")?;
                let trust = trust.clone();
                Ok(subscriber
                    .filter(move |message| {
                        let delivered = trust
                            .as_deref()
                            .is_none_or(|trust| authentic(trust, message));
                        futures::future::ready(delivered)
                    })
                    .map(|message| Delivery {
                        trace: message
                            .headers
                            .as_ref()
                            .map(|headers| crate::telemetry::extract(&ReceivedNatsHeaders(headers)))
                            .unwrap_or_default(),
                        payload: message.payload,
                    })
                    .boxed())
            }
            Self::Local(bus) => Ok(bus.subscribe(subject)),
        }
    }

    /// At shutdown: waits for the events still queued to leave, at most `limit` — NATS may
    /// be stopping too, and then they are lost as a crash would lose them (clients catch up
    /// with `after=`).
    pub async fn flush_before_exit(&self, limit: std::time::Duration) {
        if tokio::time::timeout(limit, self.flush()).await.is_err() {
            tracing::warn!(
                ?limit,
                "NATS did not take the last events in time; stopping anyway"
            );
        }
    }

    /// Waits until everything published so far has left this process.
    pub async fn flush(&self) -> anyhow::Result<()> {
        match self {
            Self::Nats { client, .. } => client.flush().await.context("flush NATS"),
            Self::Local(_) => Ok(()),
        }
    }
}

/// Whether a message carries the signature of a role that may publish it; what does not is
/// dropped, logged and counted (`astral_events_rejected_total{reason}`).
fn authentic(trust: &EventTrust, message: &async_nats::Message) -> bool {
    let signature = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(SIGNATURE_HEADER))
        .map(async_nats::HeaderValue::as_str);
    match trust.verify(message.subject.as_str(), &message.payload, signature) {
        Ok(_) => true,
        Err(rejected) => {
            metrics::counter!("astral_events_rejected_total", "reason" => rejected.as_str())
                .increment(1);
            tracing::warn!(
                subject = message.subject.as_str(),
                reason = rejected.as_str(),
                "event dropped: not signed by a service that publishes it"
            );
            false
        }
    }
}

/// NATS headers as a trace context carrier.
struct NatsHeaders<'a>(&'a mut async_nats::HeaderMap);

impl opentelemetry::propagation::Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// Received NATS headers as a trace context carrier.
struct ReceivedNatsHeaders<'a>(&'a async_nats::HeaderMap);

impl opentelemetry::propagation::Extractor for ReceivedNatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(async_nats::HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Subject → live subscribers, all in this process.
#[derive(Clone)]
pub struct LocalBus {
    subscribers: Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Delivery>>>>>,
    /// Connected once, for good.
    connections: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            subscribers: Arc::default(),
            connections: Arc::new(tokio::sync::watch::Sender::new(1)),
        }
    }
}

impl LocalBus {
    fn publish(&self, subject: &str, delivery: Delivery) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(senders) = subscribers.get_mut(subject) {
            senders.retain(|sender| sender.send(delivery.clone()).is_ok());
            if senders.is_empty() {
                subscribers.remove(subject);
            }
        }
    }

    fn subscribe(&self, subject: String) -> Subscription {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(subject)
            .or_default()
            .push(sender);
        tokio_stream::wrappers::UnboundedReceiverStream::new(receiver).boxed()
    }
}

/// How long to wait before the `attempt`-th try to reach NATS again: at once, then 100 ms
/// more each time up to half a second, plus up to 250 ms of jitter (so that every process
/// of a deployment does not knock at the same instant). Live delivery is back within about
/// a second of NATS returning, where the client's default back-off grew to 4 s.
fn reconnect_delay(attempt: usize) -> std::time::Duration {
    use std::time::Duration;
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let steps = u64::try_from(attempt - 1).unwrap_or(u64::MAX);
    let base = Duration::from_millis(steps.saturating_mul(100).min(500));
    base + Duration::from_millis(rand::random::<u64>() % 250)
}

#[cfg(test)]
mod tests;

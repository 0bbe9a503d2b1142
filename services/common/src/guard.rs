//! Who may call what. Every call a service receives passes its guard before it runs: the
//! caller's role is proven by its TLS client certificate, the acting user by their access
//! token in the `authorization` metadata, and both are checked against the service's table of
//! methods. A handler then takes the acting user from [`actor`], never from the request body.

use crate::ratelimit::{Limited, Limiter, Rate};
use crate::tokens::Claims;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The processes of a deployment, each with a certificate naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Auth,
    Social,
    Messaging,
    Gateway,
    Admin,
}

impl Role {
    pub const ALL: [Self; 5] = [
        Self::Auth,
        Self::Social,
        Self::Messaging,
        Self::Gateway,
        Self::Admin,
    ];

    /// The name certificates carry (as a DNS name) and configuration uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Social => "social",
            Self::Messaging => "messaging",
            Self::Gateway => "gateway",
            Self::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Publishes events, so signs them with a key of its own.
    pub fn signs_events(self) -> bool {
        matches!(self, Self::Auth | Self::Social | Self::Messaging)
    }

    /// Receives events, so verifies their signatures.
    pub fn verifies_events(self) -> bool {
        self != Self::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call one method.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// The roles whose certificates may call it.
    pub roles: &'static [Role],
    /// Whether the call acts for a user and so needs that user's access token.
    pub user: bool,
    /// How often one user may make the call (state-changing calls have a budget).
    pub rate: Option<Rate>,
}

impl Access {
    /// A call made for a user (by the gateway), with the user's token.
    pub const USER: Self = Self {
        roles: &[Role::Gateway],
        user: true,
        rate: None,
    };

    /// A state-changing call made for a user, at most `rate` per user.
    pub const fn user_at(rate: Rate) -> Self {
        Self {
            rate: Some(rate),
            ..Self::USER
        }
    }

    /// A call no user makes, open to these roles only.
    pub const fn roles(roles: &'static [Role]) -> Self {
        Self {
            roles,
            user: false,
            rate: None,
        }
    }
}

/// A service's methods (full gRPC paths, `/package.Service/Method`) and who may call them.
/// A method missing from the table is refused. Health checking and reflection are open to
/// every role of the deployment.
pub type Policy = &'static [(&'static str, Access)];

/// What a connection's transport proves about the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Mutual TLS: the caller's role is the one its certificate names.
    MutualTls,
    /// No proof of role: a Unix socket in a private directory (the all-in-one) or plaintext
    /// with `ASTRAL_INSECURE_DEV=1`. Every role is allowed; user tokens are still required.
    Trusted,
}

/// The acting user of a call, proven by their access token.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: i64,
    pub session_id: i64,
    /// The token itself, to pass on when this service calls another for the same user.
    pub token: String,
}

/// Why a token was not accepted.
#[derive(Debug)]
pub enum Refused {
    /// The token is missing, malformed, forged, expired or of an ended session.
    Unauthenticated(String),
    /// The keys or revocations needed to judge it are not loaded yet: try again.
    Unavailable(String),
}

/// Checks access tokens (signature, expiry, revocation).
pub trait VerifyToken: Send + Sync + 'static {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Refused>>;
}

/// The acting user the guard proved for this call; `UNAUTHENTICATED` if the method takes none.
pub fn actor<T>(request: &tonic::Request<T>) -> Result<Actor, tonic::Status> {
    request
        .extensions()
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("this call needs a user's access token"))
}

/// `message` as a call made for the user whose access token this is.
pub fn for_user<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The guard of one service: its policy, how it verifies tokens, what its transport proves
/// and where users' budgets are counted.
#[derive(Clone)]
pub struct Guard {
    policy: Policy,
    tokens: Arc<dyn VerifyToken>,
    transport: Transport,
    limiter: Arc<dyn Limiter>,
}

impl Guard {
    pub fn new(
        policy: Policy,
        tokens: Arc<dyn VerifyToken>,
        transport: Transport,
        limiter: Arc<dyn Limiter>,
    ) -> Self {
        Self {
            policy,
            tokens,
            transport,
            limiter,
        }
    }

    /// Admits a call to `path` from a peer that presented `certificate` (its first TLS
    /// certificate, if any) with these `authorization` metadata; the acting user if the
    /// method has one.
    async fn admit(
        &self,
        path: &str,
        certificate: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<Option<Actor>, tonic::Status> {
        let role = match self.transport {
            Transport::Trusted => None,
            Transport::MutualTls => Some(certificate.and_then(role_of).ok_or_else(|| {
                refuse(path, None, "the client certificate names no role");
                tonic::Status::permission_denied("the client certificate names no Astral role")
            })?),
        };
        let open_to_all =
            path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.");
        let access = match self.policy.iter().find(|(method, _)| *method == path) {
            Some((_, access)) => *access,
            None if open_to_all => Access::roles(&Role::ALL),
            None => {
                refuse(path, role, "unknown method");
                return Err(tonic::Status::unimplemented("no such method"));
            }
        };
        if let Some(role) = role
            && !access.roles.contains(&role)
        {
            refuse(path, Some(role), "role not allowed");
            return Err(tonic::Status::permission_denied(format!(
                "the {role} role may not call this method"
            )));
        }
        if !access.user {
            return Ok(None);
        }
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                refuse(path, role, "no user token");
                tonic::Status::unauthenticated("this call needs the user's access token")
            })?;
        let claims = self
            .tokens
            .verify(token)
            .await
            .map_err(|refused| match refused {
                Refused::Unauthenticated(why) => {
                    refuse(path, role, &why);
                    tonic::Status::unauthenticated(why)
                }
                Refused::Unavailable(why) => tonic::Status::unavailable(why),
            })?;
        let (Ok(user_id), Ok(session_id)) = (claims.sub.parse(), claims.sid.parse()) else {
            refuse(path, role, "token claims are not ids");
            return Err(tonic::Status::unauthenticated("the token is malformed"));
        };
        if let Some(rate) = access.rate {
            let action = path.rsplit('/').next().unwrap_or(path);
            match self.limiter.take(user_id, action, rate).await {
                Ok(()) => {}
                Err(Limited::Wait(wait)) => {
                    metrics::counter!("astral_rate_limited_total", "method" => action.to_owned())
                        .increment(1);
                    let seconds = wait.as_millis().div_ceil(1000).max(1);
                    let seconds = u64::try_from(seconds).unwrap_or(u64::MAX);
                    let mut status = tonic::Status::resource_exhausted(format!(
                        "too many requests: try again in {seconds} s"
                    ));
                    status
                        .metadata_mut()
                        .insert(crate::error::RETRY_AFTER, seconds.into());
                    return Err(status);
                }
                Err(Limited::Unavailable(why)) => return Err(tonic::Status::unavailable(why)),
            }
        }
        Ok(Some(Actor {
            user_id,
            session_id,
            token: token.to_owned(),
        }))
    }
}

/// One log line per refused call: the method, the peer's role and why — never a token.
fn refuse(path: &str, role: Option<Role>, why: &str) {
    let role = role.map_or("unproven", Role::as_str);
    metrics::counter!("astral_grpc_refused_total", "role" => role).increment(1);
    tracing::warn!(
        method = path,
        peer_role = role,
        reason = why,
        "call refused"
    );
}

/// The Astral role a certificate names: its first subject alternative DNS name that is one.
pub fn role_of(certificate: &[u8]) -> Option<Role> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Role::parse(dns),
            _ => None,
        })
}

impl<S> tower::Layer<S> for Guard {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            guard: self.clone(),
            inner,
        }
    }
}

/// A server's routes behind its [`Guard`].
#[derive(Clone)]
pub struct Guarded<S> {
    guard: Guard,
    inner: S,
}

type TlsInfo = tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>;

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let certificate = request
                .extensions()
                .get::<TlsInfo>()
                .and_then(TlsInfo::peer_certs)
                .and_then(|certs| certs.first().map(|cert| cert.as_ref().to_vec()));
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let admitted = guard
                .admit(
                    request.uri().path(),
                    certificate.as_deref(),
                    authorization.as_deref(),
                )
                .await;
            match admitted {
                Ok(actor) => {
                    if let Some(actor) = actor {
                        request.extensions_mut().insert(actor);
                    }
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests;

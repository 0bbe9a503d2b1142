//! The error every service returns from its use cases, and its one mapping to a gRPC status.

/// What went wrong, in the terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// Another service this one needs did not answer: try again.
    #[error("{0}")]
    Unavailable(String),
    /// What was sent is larger than allowed (OUT_OF_RANGE; 413 at the gateway).
    #[error("{0}")]
    TooLarge(String),
    /// Too many attempts: try again after this many seconds.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The gRPC metadata key that carries the seconds to wait after RESOURCE_EXHAUSTED.
pub const RETRY_AFTER: &str = "retry-after";

/// A use case's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::AlreadyExists(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated(message.into())
    }
}

impl From<sqlx::Error> for Error {
    /// A database that cannot answer now (restarting, unreachable, every connection busy,
    /// a transaction that lost a race) is `Unavailable`: try again. Anything else is a bug.
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            tracing::warn!(%error, "the database did not answer");
            return Self::Unavailable("the database is unavailable, try again".into());
        }
        Self::Internal(anyhow::Error::new(error).context("database"))
    }
}

/// Whether trying again later may succeed.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: SQLSTATE 08 connection exceptions; 57P01–57P03 the server shutting
        // down or starting; 40001 and 40P01 a serialization failure or deadlock; 53300 too
        // many connections. SQLite (numeric codes): busy or locked, extended codes included.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || ["57P01", "57P02", "57P03", "40001", "40P01", "53300"].contains(&code.as_ref())
                || code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
        }),
        _ => false,
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Self::invalid_argument(message),
            Error::NotFound(message) => Self::not_found(message),
            Error::AlreadyExists(message) => Self::already_exists(message),
            Error::PermissionDenied(message) => Self::permission_denied(message),
            Error::Unauthenticated(message) => Self::unauthenticated(message),
            Error::Unavailable(message) => Self::unavailable(message),
            Error::TooLarge(message) => Self::out_of_range(message),
            Error::RateLimited {
                message,
                retry_after_s,
            } => {
                let mut status = Self::resource_exhausted(message);
                status
                    .metadata_mut()
                    .insert(RETRY_AFTER, retry_after_s.into());
                status
            }
            Error::Internal(error) => {
                // Logged once, here, where it leaves the process; callers see no details.
                tracing::error!(error = format!("{error:#}"), "internal error");
                Self::internal("internal error")
            }
        }
    }
}

impl Error {
    /// A failed call to another service: `Unavailable` if it could not answer (down,
    /// restarting, too slow), else an internal error with `what` as context.
    pub fn downstream(status: tonic::Status, what: &str) -> Self {
        use tonic::Code;
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                tracing::warn!(%status, "{what}: the service did not answer");
                Self::Unavailable(format!("{what}: a service is unavailable, try again"))
            }
            _ => Self::Internal(anyhow::Error::new(status).context(what.to_owned())),
        }
    }
}

/// Parses an id received over gRPC; `what` names it in the error.
pub fn parse_id(text: &str, what: &str) -> Result<i64> {
    crate::ids::parse_id(text).ok_or_else(|| Error::invalid(format!("{what} is not a valid id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_cannot_answer_now_is_unavailable_not_a_bug() {
        for transient in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            assert!(matches!(Error::from(transient), Error::Unavailable(_)));
        }
        assert!(matches!(
            Error::from(sqlx::Error::RowNotFound),
            Error::Internal(_)
        ));
        assert_eq!(
            tonic::Status::from(Error::from(sqlx::Error::PoolTimedOut)).code(),
            tonic::Code::Unavailable
        );
    }
}

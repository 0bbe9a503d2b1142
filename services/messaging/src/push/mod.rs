//! Web Push: the payload's encryption (RFC 8291) and the server's VAPID identity (RFC 8292).

pub mod encrypt;
pub mod vapid;

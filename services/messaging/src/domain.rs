//! Message rules: what a message's content and nonce may be, parsed once at the edge.

use astral_common::Error;

/// The longest message, in characters, after trimming.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Message text: 1–4,000 characters after trimming, no control characters but newlines and tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let text = input.trim();
        if text.is_empty() {
            return Err(Error::invalid("a message cannot be empty"));
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Error::invalid("a message has at most 4000 characters"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(Error::invalid(
                "a message cannot contain control characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's idempotency key for a send: up to 64 printable ASCII characters; empty means none.
pub fn parse_nonce(input: &str) -> Result<Option<String>, Error> {
    if input.is_empty() {
        return Ok(None);
    }
    if input.len() > 64 || !input.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "a nonce has at most 64 printable ASCII characters",
        ));
    }
    Ok(Some(input.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_bounded() {
        assert_eq!(MessageContent::parse("  hi \n").unwrap().as_str(), "hi");
        assert!(MessageContent::parse("   ").is_err());
        assert!(MessageContent::parse(&"é".repeat(4000)).is_ok());
        assert!(MessageContent::parse(&"é".repeat(4001)).is_err());
        assert!(MessageContent::parse("a\u{0}b").is_err());
        assert_eq!(
            MessageContent::parse("<b>x</b>\nline").unwrap().as_str(),
            "<b>x</b>\nline"
        );
    }

    #[test]
    fn nonces_are_optional_and_bounded() {
        assert_eq!(parse_nonce("").unwrap(), None);
        assert_eq!(parse_nonce("abc-123").unwrap().as_deref(), Some("abc-123"));
        assert!(parse_nonce(&"x".repeat(65)).is_err());
        assert!(parse_nonce("has space").is_err());
    }
}

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

/// A group chat's name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatName(String);

impl ChatName {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let name = input.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("a chat name has 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "a chat name cannot contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reaction: one emoji (a short run of non-space symbols, at most 32 bytes, no letters or
/// digits of ASCII so that it cannot be a word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let valid = !input.is_empty()
            && input.len() <= 32
            && input.chars().count() <= 8
            && !input
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c.is_ascii_alphanumeric());
        if !valid {
            return Err(Error::invalid("a reaction is one emoji"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The usernames named with `@username` in a message (lower case, each once, in order).
pub fn mentioned_usernames(content: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = content;
    while let Some(at) = rest.find('@') {
        let preceded_by_word = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let after = &rest[at + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(after.len());
        let name = after[..end].trim_end_matches('.').to_ascii_lowercase();
        if !preceded_by_word && (3..=32).contains(&name.len()) && !names.contains(&name) {
            names.push(name);
        }
        rest = &after[end..];
    }
    names
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

    #[test]
    fn chat_names_are_trimmed_and_bounded() {
        assert_eq!(
            ChatName::parse("  Weekend plans ").unwrap().as_str(),
            "Weekend plans"
        );
        assert!(ChatName::parse("  ").is_err());
        assert!(ChatName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn a_reaction_is_one_emoji() {
        assert!(Emoji::parse("👍").is_ok());
        assert!(Emoji::parse("❤️").is_ok());
        assert!(Emoji::parse("👨‍👩‍👧").is_ok());
        for bad in ["", "lol", "👍 👍", "a👍", &"👍".repeat(9)] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mentions_are_found_once_each() {
        assert_eq!(
            mentioned_usernames("hi @Alice and @bob_2, @alice again"),
            ["alice", "bob_2"]
        );
        assert_eq!(
            mentioned_usernames("mail me at me@example.com"),
            Vec::<String>::new()
        );
        assert_eq!(mentioned_usernames("@ab is too short, @carol."), ["carol"]);
        assert_eq!(mentioned_usernames("@@dave"), ["dave"]);
    }
}

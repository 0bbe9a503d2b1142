//! Message rules: what a message's content and nonce may be, parsed once at the edge.

use astral_common::Error;

/// The longest message, in characters, after trimming.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Explicit direction controls (embeddings, overrides, isolates): they reorder the text
/// around them, and so disguise it (`invoice\u{202E}fdp.exe` reads as `invoiceexe.pdf`).
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing: spaces, zero-width and joining marks, fillers, variation
/// selectors and tags. Text made only of them looks empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Refuses text that would show something other than it says: direction controls, or
/// nothing visible at all (then it is "empty").
fn shown_as_written(text: &str, what: &str) -> Result<(), Error> {
    if text.chars().all(is_invisible) {
        return Err(Error::invalid(format!("{what} cannot be empty")));
    }
    if text.chars().any(is_direction_control) {
        return Err(Error::invalid(format!(
            "{what} cannot contain direction overrides"
        )));
    }
    Ok(())
}

/// Message text: 1–4,000 characters after trimming, something visible, no control characters
/// but newlines and tabs, no direction overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let text = input.trim();
        shown_as_written(text, "a message")?;
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

impl MessageContent {
    /// The text of a message that carries files: may be empty, else as [`Self::parse`].
    pub fn parse_beside_files(input: &str) -> Result<Self, Error> {
        if input.trim().is_empty() {
            return Ok(Self(String::new()));
        }
        Self::parse(input)
    }
}

/// The most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// The files to attach to a message: at most [`MAX_ATTACHMENTS`] ids, each once.
pub fn parse_attachment_ids(input: &[String]) -> Result<Vec<i64>, Error> {
    if input.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid(format!(
            "a message carries at most {MAX_ATTACHMENTS} files"
        )));
    }
    let mut ids = Vec::with_capacity(input.len());
    for text in input {
        let id = astral_common::ids::parse_id(text)
            .ok_or_else(|| Error::invalid("attachment_ids holds something that is not an id"))?;
        if ids.contains(&id) {
            return Err(Error::invalid("attachment_ids names a file twice"));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The longest file name kept, in characters.
const MAX_FILENAME_CHARS: usize = 200;

/// An uploaded file's name as shown and offered on download: its last path component,
/// without control characters or direction overrides (which disguise an extension), at most
/// 200 characters; "file" when nothing is left.
pub fn file_name(input: &str) -> String {
    let last = input.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_direction_control(c))
        .take(MAX_FILENAME_CHARS)
        .collect();
    let kept = kept.trim();
    if kept.is_empty() || kept.chars().all(is_invisible) || kept == "." || kept == ".." {
        "file".to_owned()
    } else {
        kept.to_owned()
    }
}

/// The type an uploader declared for a file that is not an image: a plain `type/subtype`
/// (parameters dropped, lower-cased), never `image/…` (images are known by their bytes, so a
/// file that claims to be one and is not is just bytes); `application/octet-stream` else.
pub fn declared_type(input: &str) -> String {
    let essence = input.split(';').next().unwrap_or_default().trim();
    let token = |part: &str| {
        !part.is_empty()
            && part.len() <= 64
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) && !kind.eq_ignore_ascii_case("image") => {
            essence.to_ascii_lowercase()
        }
        _ => "application/octet-stream".to_owned(),
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

/// A group chat's name: 1–100 characters after trimming, something visible, no control
/// characters, no direction overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatName(String);

impl ChatName {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let name = input.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("a chat name has 1 to 100 characters"));
        }
        shown_as_written(name, "a chat name")?;
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
                .any(|c| c.is_whitespace() || c.is_control() || c.is_ascii_alphanumeric())
            && shown_as_written(input, "a reaction").is_ok();
        if !valid {
            return Err(Error::invalid("a reaction is one emoji"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a direct chat refuses what would change it.
pub fn read_only() -> Error {
    Error::forbidden("this chat is read-only: you are no longer friends")
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
    fn text_must_show_what_it_says() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{200D}\u{2060}",
            "\u{3164}",
            "\u{2800} \u{FEFF}",
        ] {
            assert!(MessageContent::parse(invisible).is_err(), "{invisible:?}");
            assert!(ChatName::parse(invisible).is_err(), "{invisible:?}");
            assert!(Emoji::parse(invisible).is_err(), "{invisible:?}");
        }
        for overridden in ["invoice\u{202E}fdp.exe", "a\u{2066}b\u{2069}", "x\u{202B}y"] {
            assert!(MessageContent::parse(overridden).is_err(), "{overridden:?}");
            assert!(ChatName::parse(overridden).is_err(), "{overridden:?}");
        }
        // Joiners inside visible text are fine: emoji sequences and scripts need them.
        assert!(Emoji::parse("👩\u{200D}💻").is_ok());
        assert!(MessageContent::parse("שלום \u{200F}world").is_ok());
        assert!(ChatName::parse("Team 🚀").is_ok());
    }

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

    #[test]
    fn a_file_name_keeps_its_last_component_and_nothing_that_disguises_it() {
        assert_eq!(file_name("photo.jpg"), "photo.jpg");
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("C:\\Users\\me\\cv.pdf"), "cv.pdf");
        assert_eq!(file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(file_name("a\nb\u{0}c"), "abc");
        assert_eq!(file_name(""), "file");
        assert_eq!(file_name(".."), "file");
        assert_eq!(file_name("dir/"), "file");
        assert_eq!(file_name(&"é".repeat(300)).chars().count(), 200);
    }

    #[test]
    fn a_declared_type_is_a_plain_type_and_never_an_image() {
        assert_eq!(declared_type("application/pdf"), "application/pdf");
        assert_eq!(declared_type("Text/Plain; charset=utf-8"), "text/plain");
        assert_eq!(declared_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(declared_type("image/png"), "application/octet-stream");
        assert_eq!(
            declared_type("text/html\r\nX: y"),
            "application/octet-stream"
        );
        assert_eq!(declared_type(""), "application/octet-stream");
        assert_eq!(declared_type("nonsense"), "application/octet-stream");
    }

    #[test]
    fn attachment_ids_are_few_distinct_ids() {
        assert_eq!(
            parse_attachment_ids(&["12".into(), "13".into()]).unwrap(),
            vec![12, 13]
        );
        assert!(parse_attachment_ids(&["12".into(), "12".into()]).is_err());
        assert!(parse_attachment_ids(&["x".into()]).is_err());
        let eleven: Vec<String> = (1..=11).map(|i| i.to_string()).collect();
        assert!(parse_attachment_ids(&eleven).is_err());
        assert!(parse_attachment_ids(&eleven[..10]).is_ok());
    }

    #[test]
    fn a_message_with_files_may_say_nothing() {
        assert_eq!(
            MessageContent::parse_beside_files("  ").unwrap().as_str(),
            ""
        );
        assert_eq!(
            MessageContent::parse_beside_files(" hi ").unwrap().as_str(),
            "hi"
        );
        assert!(MessageContent::parse_beside_files("\u{202E}x").is_err());
    }
}

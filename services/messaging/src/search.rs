//! Search rules: what a message is found by, and what a query asks for.
//!
//! Both run modes index and query the same words, cut here rather than by PostgreSQL's or
//! SQLite's tokenizers (which differ: stemming, what counts as a letter, case folding under
//! the database's locale). A word is a run of Unicode letters and digits, lower-cased, its
//! first [`MAX_WORD_CHARS`] characters kept. A message is stored with its distinct words
//! (`search_words`); the databases only look words up (`store/search.rs`). Highlights are
//! found here too, so they always agree with what matched.

use astral_common::{Error, Result};

/// A query's length, in characters, and its words.
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_QUERY_WORDS: usize = 10;
/// Longer words are indexed and matched by their beginning (a lexeme of PostgreSQL's
/// `tsvector` must stay under 2 KiB; nobody types a 64-letter word to find it).
pub const MAX_WORD_CHARS: usize = 64;
/// Results per page, and unless asked.
pub const MAX_RESULTS: i64 = 50;
pub const DEFAULT_RESULTS: i64 = 20;

/// A word of a text: where it is (in characters), and its lower-cased form.
#[derive(Debug, PartialEq, Eq)]
struct Word {
    start: usize,
    end: usize,
    folded: String,
}

/// Combining marks (accents written as their own character) belong to the word they follow.
fn is_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// The words of `text`, in order.
fn words(text: &str) -> impl Iterator<Item = Word> + '_ {
    let mut chars = text.chars().enumerate().peekable();
    std::iter::from_fn(move || {
        while chars.next_if(|(_, c)| !c.is_alphanumeric()).is_some() {}
        let (start, first) = chars.next()?;
        let mut end = start + 1;
        let mut folded: String = first.to_lowercase().collect();
        let mut kept = 1;
        while let Some((at, c)) = chars.next_if(|(_, c)| c.is_alphanumeric() || is_mark(*c)) {
            end = at + 1;
            if kept < MAX_WORD_CHARS {
                folded.extend(c.to_lowercase());
                kept += 1;
            }
        }
        Some(Word { start, end, folded })
    })
}

/// What the index holds for a message of `chat_id`: its distinct words and its chat's term,
/// separated by single spaces (empty when it has no words, as a deleted message: nothing to
/// find it by).
pub fn index_words(chat_id: &str, content: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut terms: Vec<String> = words(content)
        .map(|word| word.folded)
        .filter(|word| seen.insert(word.clone()))
        .collect();
    if !terms.is_empty() {
        terms.push(chat_term(chat_id));
    }
    terms.join(" ")
}

/// The term that stands for a chat in the index: `§` (which no word holds: it is not a letter
/// or a digit) and the chat id's bytes in hex (letters and digits only, so no tokenizer cuts
/// it). A search asks for its words *and* one of the searcher's chats' terms, so that the
/// index itself narrows the matches to those chats, however common the words are elsewhere.
fn chat_term(chat_id: &str) -> String {
    let mut term = String::from("§");
    for byte in chat_id.bytes() {
        term.push_str(&format!("{byte:02x}"));
    }
    term
}

/// A search: every word must be in a message, the last one also as the beginning of a word
/// (what someone is still typing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    words: Vec<String>,
}

impl Query {
    /// Parses `q`: at least one word, at most [`MAX_QUERY_WORDS`], at most
    /// [`MAX_QUERY_CHARS`] characters.
    pub fn parse(q: &str) -> Result<Self> {
        if q.trim().is_empty() {
            return Err(Error::invalid("q is empty: say what to search for"));
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::invalid(format!(
                "q has at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let words: Vec<String> = words(q).map(|word| word.folded).collect();
        if words.is_empty() {
            return Err(Error::invalid("q has no letters or digits to search for"));
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(Error::invalid(format!(
                "q has at most {MAX_QUERY_WORDS} words"
            )));
        }
        Ok(Self { words })
    }

    /// The query in `chats` as a PostgreSQL `tsquery` (its lexemes quoted, so taken as they
    /// are): `'hello' & 'wor':* & ('§31' | '§32')`.
    pub fn tsquery<'a>(&self, chats: impl IntoIterator<Item = &'a str>) -> String {
        self.terms(chats, |term| format!("'{term}'"), (" & ", " | "), ":*")
    }

    /// The query in `chats` as an SQLite FTS5 expression (each term a quoted string):
    /// `"hello" AND "wor"* AND ("§31" OR "§32")`.
    pub fn fts5<'a>(&self, chats: impl IntoIterator<Item = &'a str>) -> String {
        self.terms(chats, |term| format!("\"{term}\""), (" AND ", " OR "), "*")
    }

    /// Terms hold only letters, digits and `§`, so quoting them needs no escapes.
    fn terms<'a>(
        &self,
        chats: impl IntoIterator<Item = &'a str>,
        quote: impl Fn(&str) -> String,
        (and, or): (&str, &str),
        prefix: &str,
    ) -> String {
        let mut terms: Vec<String> = self.words.iter().map(|word| quote(word)).collect();
        if let Some(last) = terms.last_mut() {
            last.push_str(prefix);
        }
        let chats: Vec<String> = chats
            .into_iter()
            .map(|chat| quote(&chat_term(chat)))
            .collect();
        terms.push(format!("({})", chats.join(or)));
        terms.join(and)
    }

    /// Whether `content` holds every word of the query, the last also as the beginning of a
    /// word: what the index answers, checked again on the text as it is now.
    pub fn matches(&self, content: &str) -> bool {
        let Some((last, whole)) = self.words.split_last() else {
            return false;
        };
        let held: Vec<String> = words(content).map(|word| word.folded).collect();
        held.iter().any(|word| word.starts_with(last.as_str()))
            && whole.iter().all(|wanted| held.contains(wanted))
    }

    /// Where `content` matches: every word equal to one of the query's words, or beginning
    /// with its last; `(start, end)` in characters, in order.
    pub fn highlights(&self, content: &str) -> Vec<(usize, usize)> {
        let Some((last, whole)) = self.words.split_last() else {
            return Vec::new();
        };
        words(content)
            .filter(|word| word.folded.starts_with(last.as_str()) || whole.contains(&word.folded))
            .map(|word| (word.start, word.end))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased_then_the_chat() {
        let words = |content| index_words("1_2", content);
        assert_eq!(
            words("Hello, WORLD! hello-world_2 x²"),
            "hello world 2 x² §315f32"
        );
        assert_eq!(words("Ça va? Приве́т 東京"), "ça va приве́т 東京 §315f32");
        assert_eq!(words("🎉 ... !!!"), "");
        assert_eq!(words(""), "");
    }

    #[test]
    fn a_long_word_is_kept_by_its_beginning() {
        let long = "a".repeat(100);
        assert_eq!(
            index_words("g", &long),
            format!("{} §67", "a".repeat(MAX_WORD_CHARS))
        );
        let query = Query::parse(&long).unwrap();
        assert_eq!(query.highlights(&long), vec![(0, 100)]);
    }

    #[test]
    fn a_query_needs_words_and_stays_small() {
        for empty in ["", "   ", "?!…"] {
            assert!(Query::parse(empty).is_err(), "{empty:?}");
        }
        assert!(Query::parse(&"a ".repeat(11)).is_err());
        assert!(Query::parse(&"a".repeat(201)).is_err());
        assert!(Query::parse(&"a".repeat(200)).is_ok());
    }

    #[test]
    fn queries_are_written_for_each_database_with_the_last_word_as_a_prefix() {
        let query = Query::parse("Hello, wor").unwrap();
        let chats = ["1", "g"];
        assert_eq!(query.tsquery(chats), "'hello' & 'wor':* & ('§31' | '§67')");
        assert_eq!(
            query.fts5(chats),
            "\"hello\" AND \"wor\"* AND (\"§31\" OR \"§67\")"
        );
        // Quotes and operators in the query are not words, and chat ids are written in hex:
        // nothing to escape.
        let hostile = Query::parse("a' | b\" OR c*:").unwrap();
        assert_eq!(hostile.tsquery(["'"]), "'a' & 'b' & 'or' & 'c':* & ('§27')");
        assert_eq!(
            hostile.fts5(["\""]),
            "\"a\" AND \"b\" AND \"or\" AND \"c\"* AND (\"§22\")"
        );
    }

    #[test]
    fn a_text_matches_when_it_holds_every_word_the_last_as_a_beginning() {
        let query = Query::parse("lunch tick").unwrap();
        assert!(query.matches("Tickets for LUNCH"));
        assert!(!query.matches("lunch at noon"), "the last word is missing");
        assert!(
            !query.matches("lunchtime tickets"),
            "only the last word is a prefix"
        );
        assert!(!query.matches(""));
    }

    #[test]
    fn highlights_are_character_offsets_of_each_matching_word() {
        let query = Query::parse("café wor").unwrap();
        let content = "😀 Café, the WORLD of café-work; coffee";
        // 😀 is one character (two UTF-16 units, four bytes): offsets count characters.
        assert_eq!(
            query.highlights(content),
            vec![(2, 6), (12, 17), (21, 25), (26, 30)]
        );
        let chars: Vec<char> = content.chars().collect();
        let shown: Vec<String> = query
            .highlights(content)
            .iter()
            .map(|&(start, end)| chars[start..end].iter().collect())
            .collect();
        assert_eq!(shown, ["Café", "WORLD", "café", "work"]);
    }
}

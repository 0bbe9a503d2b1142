//! Account rules: what a username and a password may be, parsed once at the edge.

use astral_common::Error;

/// A valid username: 3–32 characters of `a-z 0-9 _ .`, kept in lower case so that names
/// compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let name = input.trim().to_ascii_lowercase();
        if !(3..=32).contains(&name.len()) {
            return Err(Error::invalid("a username has 3 to 32 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err(Error::invalid(
                "a username may only hold letters a-z, digits, '_' and '.'",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password acceptable for a new account: at least 8 characters, at most 128 bytes (so a
/// huge input never costs a hash).
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(input: String) -> Result<Self, Error> {
        if input.len() > MAX_PASSWORD_BYTES {
            return Err(Error::invalid("a password has at most 128 bytes"));
        }
        if input.chars().count() < 8 {
            return Err(Error::invalid("a password has at least 8 characters"));
        }
        Ok(Self(input))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest password that is ever hashed.
pub const MAX_PASSWORD_BYTES: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        assert_eq!(
            Username::parse("Alice_01.x").unwrap().as_str(),
            "alice_01.x"
        );
        assert!(Username::parse("al").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("<script>").is_err());
        assert!(Username::parse("élise").is_err());
    }

    #[test]
    fn passwords_have_a_floor_and_a_ceiling() {
        assert!(NewPassword::parse("short".into()).is_err());
        assert!(NewPassword::parse("long enough".into()).is_ok());
        assert!(NewPassword::parse("x".repeat(129)).is_err());
        assert!(NewPassword::parse("x".repeat(128)).is_ok());
    }
}

//! Key IDs, account IDs and Region names, parsed once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// An access key ID, `^(AKIA|ASIA)[A-Z0-9]{16}$`. Sample placeholders never pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccessKeyId(String);

impl TryFrom<String> for AccessKeyId {
    type Error = Invalid;
    fn try_from(raw: String) -> Result<Self, Invalid> {
        Self::parse(&raw)
    }
}

impl From<AccessKeyId> for String {
    fn from(k: AccessKeyId) -> String {
        k.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `AKIA`: long-term key of an IAM user (or root).
    LongTerm,
    /// `ASIA`: temporary STS credentials; IAM key APIs cannot touch them, only policy can.
    Temporary,
}

/// What is wrong with a string given as a key ID, in the words a person fixes it with.
fn key_hint(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed != raw {
        return "it has spaces around it".into();
    }
    let upper = raw.to_ascii_uppercase();
    if !(upper.starts_with("AKIA") || upper.starts_with("ASIA")) {
        return "a key ID starts with AKIA (a user's long-term key) or ASIA (a session's); the secret access key is not the ID".into();
    }
    let len = raw.chars().count();
    if len != 20 {
        return format!(
            "it is {len} characters long; a key ID is 20 ({} {})",
            (len as isize - 20).unsigned_abs(),
            if len < 20 { "missing" } else { "too many" }
        );
    }
    if upper != raw {
        return "key IDs are upper case".into();
    }
    "only letters A-Z and digits may follow AKIA or ASIA".into()
}

impl AccessKeyId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = raw.len() == 20
            && (raw.starts_with("AKIA") || raw.starts_with("ASIA"))
            && raw[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            // Not echoed whole unless it looks like a key ID: what was pasted may be the secret.
            let upper = raw.trim().to_ascii_uppercase();
            let shown = if upper.starts_with("AKIA") || upper.starts_with("ASIA") {
                format!("{:?}", truncate(raw, 40))
            } else {
                format!(
                    "{:?}",
                    format!("{}…", raw.chars().take(4).collect::<String>())
                )
            };
            Err(Invalid(format!(
                "access key ID {shown} does not match ^(AKIA|ASIA)[A-Z0-9]{{16}}$ ({})",
                key_hint(raw)
            )))
        }
    }

    pub fn kind(&self) -> KeyKind {
        if self.0.starts_with("AKIA") {
            KeyKind::LongTerm
        } else {
            KeyKind::Temporary
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 12-digit AWS account ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl TryFrom<String> for AccountId {
    type Error = Invalid;
    fn try_from(raw: String) -> Result<Self, Invalid> {
        Self::parse(&raw)
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.len() == 12 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Invalid(format!(
                "account ID {:?} is not 12 digits",
                truncate(raw, 40)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `eu-central-2`.
pub fn is_region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && r.len() <= 25
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Shortens attacker-controlled text before it reaches an error message, a log or SNS.
/// The marker is ASCII so a cut never adds non-ASCII text of our own.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push_str("...");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_validated() {
        assert_eq!(
            AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE")
                .map(|k| k.kind())
                .ok(),
            Some(KeyKind::LongTerm)
        );
        assert_eq!(
            AccessKeyId::parse("ASIAIOSFODNN7EXAMPLE")
                .map(|k| k.kind())
                .ok(),
            Some(KeyKind::Temporary)
        );
        for bad in [
            "",
            "GeneratedFindingAccessKeyId",
            "AKIAIOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLEX",
            "akiaiosfodnn7example",
            "AKIAIOSFODNN7EXAMPl",
            "ABIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMP\u{e9}",
        ] {
            assert!(AccessKeyId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("111122223333").is_ok());
        assert!(AccountId::parse("11112222333").is_err());
        assert!(AccountId::parse("11112222333a").is_err());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 2), "éé...");
        assert_eq!(truncate("abc", 3), "abc");
    }
}

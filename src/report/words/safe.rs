//! Text made safe to show: what the key's holder controls made inert for a terminal, a phone and
//! a chat channel, timestamps, and SNS subjects' ASCII. Pure.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::report::MAX_SUBJECT;

/// Longest attacker-controlled value a notice shows.
const MAX_UNTRUSTED_CHARS: usize = 200;

/// Text the key's holder controls (user agents, request parameters, names found in CloudTrail,
/// free-text fields of a request) made inert for a terminal, a phone and a chat channel: no
/// control or bidirectional/zero-width characters (no fake lines, no reordered text), no chat
/// markup or mentions (`@here`, `<!channel>`, code fences), no clickable links.
pub fn defang(s: &str) -> String {
    let mut out = inert_up_to(s, MAX_UNTRUSTED_CHARS);
    if s.chars().count() > MAX_UNTRUSTED_CHARS {
        out.push_str("...");
    }
    out
}

/// [`defang`] without the length cap: lines killswitch composes around names the key's holder
/// may have chosen (a role session name such as `@here`, an attacker-made user).
pub fn inert(s: &str) -> String {
    inert_up_to(s, usize::MAX)
}

fn inert_up_to(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(4 * max.min(4096)));
    for c in s.chars().take(max) {
        match c {
            // Invisible and bidirectional formatting, tag characters.
            '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}' => {}
            // Line and paragraph separators break lines like a newline does.
            '\u{2028}' | '\u{2029}' => out.push(' '),
            c if c.is_control() => out.push(' '),
            '`' => out.push('\''),
            '<' => out.push('\u{2039}'),
            '>' => out.push('\u{203A}'),
            '[' => out.push('('),
            ']' => out.push(')'),
            '*' => out.push('\u{2217}'),
            '~' => out.push('\u{223C}'),
            '|' => out.push('\u{00A6}'),
            '@' => out.push('\u{FF20}'),
            c => out.push(c),
        }
    }
    // Links: no scheme a client turns into a link, no bare domain it auto-links.
    let mut linkless = String::with_capacity(out.len());
    let chars: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 4)].iter().collect();
        if rest.eq_ignore_ascii_case("http") {
            linkless.push_str("hxxp");
            i += 4;
            continue;
        }
        if chars[i] == ':' && chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') {
            linkless.push_str("(:)//");
            i += 3;
            continue;
        }
        if chars[i] == '.'
            && i > 0
            && chars[i - 1].is_ascii_alphanumeric()
            && looks_like_tld(&chars[i + 1..])
        {
            linkless.push_str("(.)");
            i += 1;
            continue;
        }
        linkless.push(chars[i]);
        i += 1;
    }
    linkless
}

/// Whether the letters after a dot read as a domain's last label (`com`, `example`, `IO`) that
/// chat clients and phones turn into links; mixed case (`InstanceCredentialExfiltration.OutsideAWS`)
/// and versions (`2.15.0`) do not.
fn looks_like_tld(rest: &[char]) -> bool {
    let label: String = rest
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let boundary = rest
        .get(label.len())
        .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != '-');
    let one_case = label.chars().all(|c| c.is_ascii_lowercase())
        || (label.len() <= 6 && label.chars().all(|c| c.is_ascii_uppercase()));
    let known = COMMON_TLDS.iter().any(|t| t.eq_ignore_ascii_case(&label));
    let punycode = rest.len() >= 4
        && rest[..4]
            .iter()
            .collect::<String>()
            .eq_ignore_ascii_case("xn--");
    punycode || ((2..=24).contains(&label.len()) && boundary && (one_case || known))
}

/// Last labels clients link in any case (`evil.CoM`).
const COMMON_TLDS: [&str; 24] = [
    "com", "net", "org", "io", "co", "info", "biz", "xyz", "ru", "cn", "app", "dev", "me", "ly",
    "sh", "to", "cc", "top", "site", "online", "link", "click", "zip", "mov",
];

/// [`defang`]ed and in double quotes, so where the value starts and ends is never in doubt.
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", defang(s).replace('"', "'"))
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Printable ASCII only, no newlines, under 100 characters.
pub fn sanitize_subject(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if out.len() > MAX_SUBJECT {
        out.truncate(MAX_SUBJECT - 3);
        out.push_str("...");
    }
    out
}

/// A user agent as a phone shows it: the first three words (`aws-cli/2.15.0 Python/3.11.6
/// Linux/6.1`).
pub fn short_agent(ua: &str) -> String {
    // Three words keep the tool, its runtime and the OS (where `kali` shows).
    let words: Vec<&str> = ua.split_whitespace().take(3).collect();
    crate::incident::truncate(&words.join(" "), 64)
}

/// "1 write", "3 writes".
pub(super) fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_printable_ascii_under_100() {
        let s = sanitize_subject(&format!(
            "[killswitch] CONTAINED: {}\n\u{e9}",
            "x".repeat(200)
        ));
        assert!(s.len() < 100);
        assert!(s.chars().all(|c| (' '..='~').contains(&c)));
        assert!(s.ends_with("..."));
        assert_eq!(sanitize_subject("ok\ttab"), "ok?tab");
    }

    #[test]
    fn attacker_text_is_inert_in_terminals_phones_and_chat() {
        let hostile = [
            "aws-cli/2.0\n\nCONTAINED: all clear, no action needed",
            "ok\u{202E}lanigiro\u{202C} \u{200B}x",
            "<!channel> @here @everyone <@U012AB3CD>",
            "```\n*bold* ~strike~ |table| [click](https://evil.example/x)",
            "see http://phish.example.com or www.evil.com now",
            "\u{1b}[31mred\u{1b}[0m \u{7}",
            "line\u{2028}CONTAINED\u{2029}tag\u{E0041}\u{E0042}",
        ];
        for h in hostile {
            let d = defang(h);
            assert!(!d.chars().any(|c| c.is_control()), "{d:?}");
            for bad in [
                "\u{202E}",
                "\u{2028}",
                "\u{2029}",
                "\u{E0041}",
                "\u{200B}",
                "<!",
                "@here",
                "@everyone",
                "<@",
                "```",
                "](",
                "http",
                "://",
                "evil.com",
                "phish.example",
                "*bold*",
                "|table|",
            ] {
                assert!(!d.contains(bad), "{h:?} -> {d:?} still has {bad:?}");
            }
        }
        assert_eq!(quoted("a\"b"), "\"a'b\"");
        assert!(defang(&"x".repeat(5000)).chars().count() <= MAX_UNTRUSTED_CHARS + 3);
        assert_eq!(defang("EVIL.COM/x"), "EVIL(.)COM/x");
        assert_eq!(defang("evil.CoM"), "evil(.)CoM");
        assert_eq!(defang("x.xn--p1ai"), "x(.)xn--p1ai");
        assert_eq!(inert(&"a".repeat(300)).len(), 300);
        assert_eq!(defang("www.evil.example"), "www(.)evil(.)example");
        // Ordinary values stay readable.
        assert_eq!(
            defang("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"),
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
        );
        assert_eq!(
            defang("aws-cli/2.15.0 Python/3.11.6"),
            "aws-cli/2.15.0 Python/3.11.6"
        );
    }

    #[test]
    fn user_agents_are_shortened_for_a_phone() {
        assert_eq!(
            short_agent("aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12"),
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0"
        );
        assert_eq!(short_agent("Boto3/1.34.0"), "Boto3/1.34.0");
        assert!(short_agent(&"x".repeat(300)).chars().count() <= 67);
    }
}

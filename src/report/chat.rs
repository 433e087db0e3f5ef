//! The chat form of every notice: the custom-notification JSON that AWS's chat integration
//! (Amazon Q Developer in chat applications, formerly AWS Chatbot) renders in Slack, Teams or
//! Chime. It carries the facts of the email text in a card; free text it does not understand is
//! dropped silently, so the shape is fixed here and tested. Pure.

use serde::Serialize;

use super::{Outcome, Report, open, sanitize_subject};

/// The limits we hold the card to. AWS documents the schema, not hard limits for every field;
/// these are the strictest we found across the chat clients it renders to (a Slack section
/// holds 3,000 characters), so nothing is cut by the client instead of by us.
pub const MAX_TITLE: usize = 250;
pub const MAX_DESCRIPTION: usize = 3000;
pub const MAX_NEXT_STEPS: usize = 5;
pub const MAX_NEXT_STEP: usize = 500;
pub const MAX_KEYWORDS: usize = 5;
pub const MAX_KEYWORD: usize = 40;
/// Open doors listed in the card (the email lists them all).
const OPEN_IN_CARD: usize = 3;

/// Which notice the card stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Seconds after containment, before the investigation.
    Short,
    /// The full report (and the sweep's final report).
    Full,
    /// A re-emitted finding whose count grew.
    StillTrying { was: u64, now: u64 },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Card {
    version: &'static str,
    source: &'static str,
    id: String,
    content: Content,
    metadata: Metadata,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    text_type: &'static str,
    title: String,
    description: String,
    next_steps: Vec<String>,
    keywords: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    thread_id: String,
    summary: String,
    event_type: String,
    related_resources: Vec<String>,
    additional_context: serde_json::Map<String, serde_json::Value>,
}

/// The thread every notice of one leaked key lands in: the short notice, the full report, the
/// final report and any STILL TRYING, whichever trigger delivered it.
pub fn thread_id(report: &Report) -> String {
    format!(
        "killswitch-{}-{}",
        report.account.as_deref().unwrap_or("account-unknown"),
        report.access_key_id
    )
}

/// The SNS message body for the chat topic.
pub fn card(report: &Report, title: &str, form: Form) -> String {
    let thread = thread_id(report);
    let card = Card {
        version: "1.0",
        source: "custom",
        // Unique per card: the client may drop a card whose id it has seen.
        id: format!(
            "{thread}-{}-{}",
            form_name(form),
            chrono::Utc::now().timestamp_millis()
        ),
        content: Content {
            text_type: "client-markdown",
            title: cut(&sanitize_subject(title), MAX_TITLE),
            description: description(report, form),
            next_steps: next_steps(report, form),
            keywords: keywords(report),
        },
        metadata: Metadata {
            thread_id: thread,
            summary: cut(&sanitize_subject(title), MAX_TITLE),
            event_type: format!("killswitch.{}", form_name(form)),
            related_resources: related(report),
            additional_context: context(report),
        },
    };
    serde_json::to_string(&card).unwrap_or_default()
}

/// A card for a notice that is not an incident report (a restore's RESTORING, RESTORED or
/// RESTORE REFUSED), in the key's thread. Its text is inert as a whole: it carries what the
/// operator typed.
pub fn notice_card(
    account: Option<&str>,
    key: &str,
    title: &str,
    event_type: &str,
    text: &str,
) -> String {
    let thread = format!("killswitch-{}-{key}", account.unwrap_or("account-unknown"));
    let lines: Vec<String> = text.lines().map(inert).collect();
    let card = Card {
        version: "1.0",
        source: "custom",
        id: format!(
            "{thread}-{event_type}-{}",
            chrono::Utc::now().timestamp_millis()
        ),
        content: Content {
            text_type: "client-markdown",
            title: cut(&sanitize_subject(&inert(title)), MAX_TITLE),
            description: fit(&lines, MAX_DESCRIPTION),
            next_steps: vec!["If this was not expected, contain the key again: killswitch respond --access-key-id KEY --reason WHY".into()],
            keywords: vec!["killswitch".into(), key.to_owned()],
        },
        metadata: Metadata {
            thread_id: thread,
            summary: cut(&sanitize_subject(&inert(title)), MAX_TITLE),
            event_type: format!("killswitch.{event_type}"),
            related_resources: vec![key.to_owned()],
            additional_context: serde_json::Map::new(),
        },
    };
    serde_json::to_string(&card).unwrap_or_default()
}

fn form_name(form: Form) -> &'static str {
    match form {
        Form::Short => "contained",
        Form::Full => "report",
        Form::StillTrying { .. } => "still-trying",
    }
}

fn description(report: &Report, form: Form) -> String {
    let mut lines = Vec::new();
    if let Form::StillTrying { was, now } = form {
        lines.push(format!("*STILL TRYING*: GuardDuty count {was} -> {now}. Containment still holds (read back now); not a new incident."));
    }
    if report.sweep_result.is_some() {
        lines.push("*FINAL REPORT* (second CloudTrail search)".into());
    }
    lines.push(format!(
        "*{}*: {}",
        report.status.headline(),
        inert(&report.summary)
    ));
    lines.push(format!(
        "Key `{}` · principal {} · account {}",
        report.access_key_id,
        inert(&report.principal),
        report.account.as_deref().unwrap_or("(from the key)")
    ));
    let applied: Vec<String> = report
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.outcome,
                Outcome::Done | Outcome::AlreadyDone | Outcome::WouldDo | Outcome::Failed
            )
        })
        .map(|s| format!("{} {:?}", s.step.name(), s.outcome))
        .collect();
    if !applied.is_empty() {
        lines.push(format!("Applied: {}", applied.join(", ")));
    }
    if let Some(v) = &report.verification {
        let last = v.checks.last();
        lines.push(format!(
            "Verified: {}{}",
            if v.holds { "HOLDS" } else { "DOES NOT HOLD" },
            last.map(|c| format!(" ({} read-back: {})", c.phase, inert(&c.detail)))
                .unwrap_or_default()
        ));
    }
    if !report.open.is_empty() {
        lines.push(format!(
            "*STILL OPEN ({})*: {}",
            report.open.len(),
            open::summary(&report.open)
        ));
        for item in report.open.iter().take(OPEN_IN_CARD) {
            let first = item.commands.first().map(|c| format!(" → `{}`", code(c)));
            lines.push(format!(
                "• {}{}",
                inert(&item.what),
                first.unwrap_or_default()
            ));
        }
        if report.open.len() > OPEN_IN_CARD {
            lines.push(format!(
                "… {} more in the email report",
                report.open.len() - OPEN_IN_CARD
            ));
        }
    }
    if let Some(undo) = report.undo.first() {
        lines.push(format!("Undo: `{}`", code(undo)));
    }
    lines.push(format!("Incident {}", inert(&report.incident_id)));
    fit(&lines, MAX_DESCRIPTION)
}

/// Joins whole lines while they fit; a line that does not fit is cut, and the card says so.
fn fit(lines: &[String], max: usize) -> String {
    const MORE: &str = "\n… (cut to fit the chat card: the email report has it all)";
    let mut out = String::new();
    for line in lines {
        let next = if out.is_empty() { 0 } else { 1 } + line.chars().count();
        if out.chars().count() + next > max {
            let room = max
                .saturating_sub(out.chars().count())
                .saturating_sub(MORE.chars().count());
            if room > 20 {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&cut(line, room - 1));
            }
            out.push_str(MORE);
            return out;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

fn next_steps(report: &Report, form: Form) -> Vec<String> {
    let mut steps: Vec<String> = report
        .next_steps
        .iter()
        .map(|s| cut(&inert(s), MAX_NEXT_STEP))
        .collect();
    if form == Form::Short {
        steps.push(
            "The full report (re-check, what the key did, undo commands) follows in this thread."
                .into(),
        );
    }
    if steps.len() > MAX_NEXT_STEPS {
        steps.truncate(MAX_NEXT_STEPS - 1);
        steps.push("More steps in the email report.".into());
    }
    steps
}

fn keywords(report: &Report) -> Vec<String> {
    let mut k = vec![
        "killswitch".to_owned(),
        report.status.headline().to_owned(),
        report.access_key_id.clone(),
    ];
    if let Some(a) = &report.account {
        k.push(a.clone());
    }
    k.into_iter()
        .take(MAX_KEYWORDS)
        .map(|s| cut(&s, MAX_KEYWORD))
        .collect()
}

fn related(report: &Report) -> Vec<String> {
    let mut r = vec![report.access_key_id.clone()];
    if report.principal.starts_with("arn:") {
        r.push(inert(&report.principal));
    }
    r
}

fn context(report: &Report) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("incidentId".into(), inert(&report.incident_id).into());
    m.insert("accessKeyId".into(), report.access_key_id.clone().into());
    m.insert(
        "status".into(),
        serde_json::to_value(report.status).unwrap_or_default(),
    );
    if let Some(a) = &report.account {
        m.insert("account".into(), a.clone().into());
    }
    m
}

/// Text the key's holder may have chosen, for chat: the email's inert form, and no `&` (Slack
/// reads `&` entities).
fn inert(s: &str) -> String {
    super::inert(s).replace('&', "\u{FF06}")
}

/// A command inside a code span: pasted as is, so only what could end the span or the line goes.
/// Its values are ours or checked to be plain IAM/ARN characters (`open::safe`).
fn code(s: &str) -> String {
    s.chars()
        .map(|c| if c == '`' || c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters, on a character boundary, marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

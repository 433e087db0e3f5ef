//! The chat form of every notice: the custom-notification JSON that AWS's chat integration
//! (Amazon Q Developer in chat applications, formerly AWS Chatbot) renders in Slack, Teams or
//! Chime. It lays out the parts `words` builds for the email (the subject's parts, the outcome,
//! what is open, the next steps, the undo command) as a card, within the card's limits; free
//! text the integration does not understand is dropped silently, so the shape is fixed here and
//! tested. Pure.

use serde::Serialize;

use super::words::{Heading, next_steps, open, subject, summary, undo};
use super::{Outcome, Report};

pub use super::words::Form;

/// The limits we hold the card to. AWS documents the schema, not hard limits for every field;
/// these are the strictest we found across the chat clients it renders to (a Slack section
/// holds 3,000 characters), so nothing is cut by the client instead of by us.
///
/// The title is not the SNS `Subject`: that one (the email's subject) must be printable ASCII
/// and under 100 characters, but the card travels in the message body, where only the message's
/// 256 KiB apply. So the card builds its own title (`title`), Unicode and up to this long, and
/// when it must cut, the principal gives way, never the outcome or the key.
pub const MAX_TITLE: usize = 250;
pub const MAX_DESCRIPTION: usize = 3000;
pub const MAX_NEXT_STEPS: usize = 5;
pub const MAX_NEXT_STEP: usize = 500;
pub const MAX_KEYWORDS: usize = 5;
pub const MAX_KEYWORD: usize = 40;
/// Open doors listed in the card (the email lists them all).
const OPEN_IN_CARD: usize = 3;

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

/// The SNS message body for the chat topic. `_subject` is the email's subject: the card does
/// not copy it (it is cut for SNS and ASCII only) but says the same from the report (`title`).
pub fn card(report: &Report, _subject: &str, form: Form) -> String {
    let thread = thread_id(report);
    let title = title(report, form);
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
            title: title.clone(),
            description: description(report, form),
            next_steps: next_steps(report, form),
            keywords: keywords(report),
        },
        metadata: Metadata {
            thread_id: thread,
            summary: title,
            event_type: format!("killswitch.{}", form_name(form)),
            related_resources: related(report),
            additional_context: context(report),
        },
    };
    serde_json::to_string(&card).unwrap_or_default()
}

/// A card for a notice that is not an incident report (a restore's RESTORING, RESTORED or
/// RESTORE REFUSED), in the key's thread. Its text is inert as a whole: it carries what the
/// operator typed. `key` is a parsed access key ID (`AccessKeyId`): letters and digits only.
pub fn notice_card(
    account: Option<&str>,
    key: &str,
    title: &str,
    event_type: &str,
    text: &str,
) -> String {
    let thread = format!("killswitch-{}-{key}", account.unwrap_or("account-unknown"));
    let lines: Vec<String> = text.lines().map(inert).collect();
    let title = notice_title(title, key);
    let next = next_steps::after_restore(event_type == "restore-refused", key);
    let card = Card {
        version: "1.0",
        source: "custom",
        id: format!(
            "{thread}-{event_type}-{}",
            chrono::Utc::now().timestamp_millis()
        ),
        content: Content {
            text_type: "client-markdown",
            title: title.clone(),
            description: fit(&lines, MAX_DESCRIPTION),
            next_steps: vec![cut(&next, MAX_NEXT_STEP)],
            keywords: vec!["killswitch".into(), key.to_owned()],
        },
        metadata: Metadata {
            thread_id: thread,
            summary: title,
            event_type: format!("killswitch.{event_type}"),
            related_resources: vec![key.to_owned()],
            additional_context: serde_json::Map::new(),
        },
    };
    serde_json::to_string(&card).unwrap_or_default()
}

/// A restore notice's title, `[killswitch] RESTORED: AKIA… by alice＠example(.)com`. Our tag is
/// kept as it is (made inert it would read `(killswitch)`) and the rest made inert, but not
/// squeezed into an SNS subject's ASCII (which showed `＠` as `?`). Too long, it is cut after
/// the key: what happened and to which key stay whole, who asked gives way.
fn notice_title(title: &str, key: &str) -> String {
    const TAG: &str = "[killswitch] ";
    let rest = inert(title.strip_prefix(TAG).unwrap_or(title));
    let whole = format!("{TAG}{rest}");
    if whole.chars().count() <= MAX_TITLE {
        return whole;
    }
    match rest.find(key).map(|at| rest.split_at(at + key.len())) {
        Some((head, tail)) => {
            let room = MAX_TITLE.saturating_sub(TAG.len() + head.chars().count());
            cut(&format!("{TAG}{head}{}", cut(tail, room)), MAX_TITLE)
        }
        None => cut(&whole, MAX_TITLE),
    }
}

/// The card's title: the email subject's parts (`[killswitch] CONTAINED - 1 new user: AKIA…
/// (IAM user alice) acct 123456789012`), so a short one is the subject exactly, but within
/// [`MAX_TITLE`] instead of an SNS subject's 99 ASCII characters. What happened and the key are
/// never cut; a long principal is shortened (its session part first), then cut and marked.
fn title(report: &Report, form: Form) -> String {
    match Heading::of(report, form) {
        Heading::Whole(s) => cut(&s, MAX_TITLE),
        Heading::Sample { finding, acct } => {
            let head = subject::SAMPLE_HEAD;
            let room = MAX_TITLE.saturating_sub(head.len() + acct.len());
            format!("{head}{}{acct}", cut(&inert(finding), room))
        }
        Heading::Short { fixed, principal } => with_principal(&fixed, principal, ""),
        Heading::Full {
            headline,
            open,
            key,
            principal,
            acct,
            ..
        } => {
            let head = match open {
                // The open summary is ours, but long lists of kinds give way to the key.
                Some(open) => {
                    let fixed = format!("[killswitch] {headline} - : {key}{acct}").len();
                    format!(
                        "{headline} - {}",
                        cut(&open, MAX_TITLE.saturating_sub(fixed + 20))
                    )
                }
                None => headline.to_owned(),
            };
            with_principal(&format!("[killswitch] {head}: {key}"), principal, &acct)
        }
    }
}

/// `{fixed} ({principal}){tail}` within [`MAX_TITLE`], `fixed` and `tail` whole: the principal
/// as it is, else without its session part, else cut and marked `…`.
fn with_principal(fixed: &str, principal: &str, tail: &str) -> String {
    let whole = inert(principal);
    let short = inert(subject::without_session(principal));
    if whole.is_empty() {
        return cut(&format!("{fixed}{tail}"), MAX_TITLE);
    }
    for p in [&whole, &short] {
        let t = format!("{fixed} ({p}){tail}");
        if t.chars().count() <= MAX_TITLE {
            return t;
        }
    }
    let room = MAX_TITLE.saturating_sub(fixed.chars().count() + " ()".len() + tail.chars().count());
    if room < 12 {
        return cut(&format!("{fixed}{tail}"), MAX_TITLE);
    }
    format!("{fixed} ({}){tail}", cut(&short, room))
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
        lines.push(format!(
            "*STILL TRYING*: {}",
            summary::still_trying(was, now)
        ));
    }
    if report.sweep_result.is_some() {
        lines.push("*FINAL REPORT* (second CloudTrail search)".into());
    }
    let said = outcome(report);
    lines.push(if said.is_empty() {
        format!("*{}*", report.status.headline())
    } else {
        format!("*{}*: {said}", report.status.headline())
    });
    lines.push(format!(
        "Key `{}` · principal {} · account {}",
        report.access_key_id,
        inert(&report.principal),
        summary::account(report)
    ));
    let applied: Vec<String> = report
        .steps
        .iter()
        .filter(|s| applied(&s.outcome))
        .map(|s| format!("{} {:?}", s.step.name(), s.outcome))
        .collect();
    if !applied.is_empty() {
        lines.push(format!("Applied: {}", applied.join(", ")));
    }
    if let Some(v) = &report.verification {
        let last = v.checks.last();
        lines.push(format!(
            "Verified: {}{}",
            match (v.holds, v.settled) {
                (true, true) => "HOLDS",
                (true, false) => "IN PLACE (inside IAM's propagation window)",
                (false, _) => "DOES NOT HOLD",
            },
            last.map(|c| format!(" ({} read-back: {})", c.phase, inert(&c.detail)))
                .unwrap_or_default()
        ));
    }
    open_lines(report, &mut lines);
    if let Some(first) = report.undo.first() {
        lines.push(undo_line(first, report.undo.len() - 1));
    }
    lines.push(format!("Incident {}", inert(&report.incident_id)));
    fit(&lines, MAX_DESCRIPTION)
}

/// A step the card lists under "Applied": what was written, would be, or failed to be.
fn applied(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Done | Outcome::AlreadyDone | Outcome::WouldDo | Outcome::Failed => true,
        Outcome::NotFound | Outcome::Skipped => false,
    }
}

/// What is still open: the summary, the first few with their first command, the rest counted.
fn open_lines(report: &Report, lines: &mut Vec<String>) {
    if report.open.is_empty() {
        return;
    }
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

/// What happened, in a sentence: the summary, or (the short notice goes out before there is one)
/// what the email's short notice says.
fn outcome(report: &Report) -> String {
    if !report.summary.is_empty() {
        return inert(&report.summary);
    }
    summary::short_outcome(report.status).to_owned()
}

/// The first undo command (the checked `killswitch restore`) as a pasteable span, with what its
/// note says that holds in a card (`undo::for_card`).
fn undo_line(first: &str, raw: usize) -> String {
    let (command, said) = undo::for_card(first, raw);
    let said: Vec<String> = said.iter().map(|s| inert(s)).collect();
    if said.is_empty() {
        format!("Undo: `{}`", code(command))
    } else {
        format!("Undo: `{}` ({})", code(command), said.join("; "))
    }
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
    if steps.is_empty() && form != Form::Short {
        steps.push(next_steps::when_none(report));
    }
    if form == Form::Short {
        steps.push(next_steps::FULL_REPORT_FOLLOWS.into());
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
///
/// `@` is the email's FULLWIDTH COMMERCIAL AT (U+FF20): `alice＠example(.)com` reads as an
/// address on any phone, and no client takes it for a mention — Slack's `@here`, `@channel` and
/// `@name` are the ASCII `@` (its `<!here>` and `<@U…>` need a `<`, which is `‹` here), Teams
/// mentions are `<at>` tags. A zero-width joiner after a plain `@` was the other candidate and is
/// not used: invisible, it goes along with every copy-paste, a client that normalises it away
/// leaves a live `@here`, and it is exactly the kind of character `inert` removes from what the
/// key's holder sends. Titles keep it too: they are not squeezed into an SNS subject's ASCII,
/// where it became `?`.
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

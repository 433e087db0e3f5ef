//! The text on-call reads: SNS subjects and messages, full and short. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use super::*;
use crate::analysis::{Category, PivotKind};
use crate::incident::AccessKeyId;

impl Report {
    /// `[killswitch] CONTAINED: AKIA... (IAM user alice) acct 123456789012`, ASCII, < 100 chars.
    pub fn subject(&self) -> String {
        if let Some(sw) = &self.sweep_result {
            let what = final_what(sw);
            return sanitize_subject(&format!(
                "[killswitch] FINAL ({what}): {} {}",
                self.access_key_id,
                self.status.headline()
            ));
        }
        if self.status == Status::Sample {
            let finding = self
                .trigger
                .get("finding_type")
                .and_then(|v| v.as_str())
                .unwrap_or("finding");
            let acct = self
                .account
                .as_deref()
                .map(|a| format!(" acct {a}"))
                .unwrap_or_default();
            let head = "[killswitch] GuardDuty SAMPLE, ignored: ";
            // The account stays; a long finding type gives way.
            let room = MAX_SUBJECT.saturating_sub(head.len() + acct.len() + 3);
            let mut finding = defang(finding);
            if finding.len() > room {
                finding = format!("{}...", finding.chars().take(room).collect::<String>());
            }
            return sanitize_subject(&format!("{head}{finding}{acct}"));
        }
        let acct = self
            .account
            .as_deref()
            .map(|a| format!(" acct {a}"))
            .unwrap_or_default();
        let who = format!(" ({})", inert(&self.principal));
        let head = if self.open.is_empty() {
            self.status.headline().to_string()
        } else {
            format!("{} - {}", self.status.headline(), open::summary(&self.open))
        };
        // What is open comes first; then the principal (its session name is in the body), and
        // the account unless it is a rejection's point; a long principal is cut to fit.
        let key = &self.access_key_id;
        let short = inert(self.principal.split(" (session ").next().unwrap_or(""));
        let mut candidates = vec![
            format!("[killswitch] {head}: {key}{who}{acct}"),
            format!("[killswitch] {head}: {key} ({short}){acct}"),
        ];
        if self.status != Status::Rejected {
            candidates.push(format!("[killswitch] {head}: {key} ({short})"));
        }
        if let Some(fits) = candidates.into_iter().find(|c| c.len() <= MAX_SUBJECT) {
            return sanitize_subject(&fits);
        }
        let fixed = format!("[killswitch] {head}: {}{acct}", self.access_key_id).len();
        let room = MAX_SUBJECT.saturating_sub(fixed + " (...)".len());
        if room < 12 {
            return sanitize_subject(&format!(
                "[killswitch] {head}: {}{acct}",
                self.access_key_id
            ));
        }
        let cut: String = short.chars().take(room).collect();
        sanitize_subject(&format!(
            "[killswitch] {head}: {} ({cut}...){acct}",
            self.access_key_id
        ))
    }

    /// The short notice's subject: the headline, the key, "full report follows".
    pub fn short_subject(&self) -> String {
        sanitize_subject(&format!(
            "[killswitch] {} (details follow): {} ({})",
            self.status.headline(),
            self.access_key_id,
            inert(&self.principal)
        ))
    }

    /// `[killswitch] STILL TRYING (count 3 -> 7), still contained: AKIA... acct 1111...`
    pub fn still_trying_subject(&self, was: u64, now: u64) -> String {
        sanitize_subject(&format!(
            "[killswitch] STILL TRYING (count {was} -> {now}), still contained: {}{}",
            self.access_key_id,
            self.account
                .as_deref()
                .map(|a| format!(" acct {a}"))
                .unwrap_or_default()
        ))
    }

    /// GuardDuty re-emitted the finding with a higher count: the key's holder is still using it.
    pub fn still_trying_message(&self, was: u64, now: u64) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "STILL TRYING: the key's holder is still using it");
        let _ = writeln!(
            m,
            "GuardDuty re-emitted the finding with count {now} (it was {was} when last reported). Containment is still in place: the read-back now found it applied, so nothing had to change. The full report was sent at containment; this is not a new incident.\n"
        );
        self.identity_lines(&mut m);
        self.action_lines(&mut m);
        let _ = writeln!(
            m,
            "\nNext: check that the calls are refused: killswitch status --access-key-id {}",
            self.access_key_id
        );
        m
    }

    /// The notice sent seconds after containment, before the investigation.
    pub fn short_message(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "{}", self.status.headline());
        let _ = writeln!(m, "{}\n", short_outcome(self.status));
        self.identity_lines(&mut m);
        self.action_lines(&mut m);
        if let Some(v) = &self.verification {
            for c in &v.checks {
                let _ = writeln!(
                    m,
                    "  - read back {} at {}: {}",
                    c.phase,
                    ts(c.at),
                    inert(&c.detail)
                );
            }
        }
        let _ = writeln!(
            m,
            "\nNext: the re-check after IAM's propagation window, what the key did (CloudTrail, every enabled Region) and the undo commands follow in the full report, in a few minutes."
        );
        m
    }

    /// What is still open, first, each with the commands that close it.
    fn open_lines(&self, m: &mut String) {
        if self.open.is_empty() {
            return;
        }
        let _ = writeln!(m, "STILL OPEN ({}), run these now:", self.open.len());
        // Every kind shows, whatever the flood of another: a few of each, the rest counted.
        let mut shown: BTreeMap<open::OpenKind, usize> = BTreeMap::new();
        let mut n = 0;
        for item in &self.open {
            let count = shown.entry(item.kind).or_default();
            *count += 1;
            if *count > open::LISTED_PER_KIND {
                continue;
            }
            n += 1;
            let _ = writeln!(m, "  {n}. {}", inert(&item.what));
            for c in &item.commands {
                let _ = writeln!(m, "       {c}");
            }
        }
        for count in shown.values().filter(|c| **c > open::LISTED_PER_KIND) {
            let _ = writeln!(
                m,
                "  ... and {} more like the {} above (JSON report: open)",
                count - open::LISTED_PER_KIND,
                open::LISTED_PER_KIND
            );
        }
        let _ = writeln!(m);
    }

    /// Which key, whose, where, and what said so: the same block in every notice.
    fn identity_lines(&self, m: &mut String) {
        let _ = writeln!(m, "Key:        {}", self.access_key_id);
        let _ = writeln!(m, "Principal:  {}", inert(&self.principal));
        let account = self.account.as_deref().unwrap_or("(from the key)");
        let _ = writeln!(m, "Account:    {account}");
        let _ = writeln!(m, "Trigger:    {}", trigger_line(&self.trigger));
        let _ = writeln!(m, "Incident:   {}", self.incident_id);
        if let Some(op) = &self.operator {
            let requested_by = self.trigger.get("requested_by").and_then(|v| v.as_str());
            if requested_by == Some(op.as_str()) {
                let _ = writeln!(m, "Operator:   the requester (command line)");
            } else {
                let _ = writeln!(m, "Operator:   {} (command line)", quoted(op));
            }
        }
    }

    fn action_lines(&self, m: &mut String) {
        let _ = writeln!(m, "\nActions:");
        for s in &self.steps {
            let outcome = format!("{:?}", s.outcome);
            let _ = writeln!(
                m,
                "  - {:<20} {outcome:<13} {}",
                s.step.name(),
                inert(&s.detail)
            );
        }
    }

    /// The SNS message: what an on-call engineer reads at 3 a.m.
    pub fn message(&self) -> String {
        let mut m = String::new();
        match &self.sweep_result {
            Some(sw) => {
                let _ = writeln!(
                    m,
                    "FINAL REPORT (second CloudTrail search, {} .. {}): {}",
                    ts(sw.searched_from),
                    ts(sw.searched_to),
                    self.status.headline()
                );
                let _ = writeln!(m, "{}\n", inert(&self.summary));
                let _ = writeln!(m, "First report: {}", ts(sw.first_report_at));
                let _ = writeln!(m, "Containment:  {}", inert(&sw.containment));
                let _ = writeln!(
                    m,
                    "New events:   {} (and {} already in the first report, not repeated)\n",
                    sw.new_events, sw.already_reported
                );
            }
            None => {
                let _ = writeln!(m, "{}", self.status.headline());
                let _ = writeln!(m, "{}\n", inert(&self.summary));
            }
        }
        self.open_lines(&mut m);
        self.identity_lines(&mut m);
        let _ = writeln!(m, "Started:    {}", ts(self.started_at));
        if self.dry_run {
            let _ = writeln!(m, "Mode:       DRY RUN (no IAM write was made)");
        }
        if !self.steps.is_empty() {
            self.action_lines(&mut m);
        }
        if let Some(v) = &self.verification {
            let _ = writeln!(
                m,
                "\nVerification: {}{}",
                if v.holds {
                    "containment holds"
                } else {
                    "CONTAINMENT DOES NOT HOLD"
                },
                if v.contested {
                    " (CONTESTED: it was undone and re-applied)"
                } else {
                    ""
                }
            );
            for c in &v.checks {
                let _ = writeln!(m, "  - {} at {}: {}", c.phase, ts(c.at), inert(&c.detail));
            }
        }
        let lists = Lists {
            open_above: !self.open.is_empty(),
            second_search: match (&self.sweep, &self.sweep_result) {
                (_, Some(_)) => Some(None),
                (Some(s), None) if s.scheduled => Some(Some(s.due_at)),
                _ => None,
            },
        };
        if let Investigation::Ran(a) = &self.investigation {
            attacker_text(&mut m, a, &lists);
        }
        let _ = writeln!(m, "\nActivity of this key (CloudTrail management events):");
        match &self.investigation {
            Investigation::NotRun { reason } => {
                let _ = writeln!(m, "  not searched: {reason}");
            }
            Investigation::Ran(a) => activity_text(&mut m, a, &lists),
        }
        if !self.next_steps.is_empty() {
            let _ = writeln!(m, "\nStill for a human:");
            for n in &self.next_steps {
                // A step's later lines are commands to paste, one per line.
                let mut lines = n.lines();
                let _ = writeln!(m, "  - {}", inert(lines.next().unwrap_or_default()));
                for line in lines {
                    let _ = writeln!(m, "    {}", inert(line.trim()));
                }
            }
        }
        if !self.undo.is_empty() {
            let _ = writeln!(
                m,
                "\nTo undo (only once the key's owner has rotated and you are sure):"
            );
            for u in &self.undo {
                let _ = writeln!(m, "  {u}");
            }
        }
        if m.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push_str("\n[truncated: see the function's JSON report in its logs]\n");
        }
        m
    }
}

/// What the lists of a notice must not repeat, and what follows the search.
struct Lists {
    /// Open items lead the notice: the lists below do not show them again.
    open_above: bool,
    /// `Some(Some(t))`: a second search runs at `t`; `Some(None)`: this is that search.
    second_search: Option<Option<DateTime<Utc>>>,
}

/// A user agent as a phone shows it: the first three words (`aws-cli/2.15.0 Python/3.11.6
/// Linux/6.1`).
pub fn short_agent(ua: &str) -> String {
    // Three words keep the tool, its runtime and the OS (where `kali` shows).
    let words: Vec<&str> = ua.split_whitespace().take(3).collect();
    crate::incident::truncate(&words.join(" "), 64)
}

fn activity_text(m: &mut String, a: &Activity, lists: &Lists) {
    if let (Some(s), Some(e)) = (a.window_start, a.window_end) {
        let _ = writeln!(m, "  window {} .. {}", ts(s), ts(e));
    }
    let _ = writeln!(m, "  Regions searched: {}", a.region_source);
    if let Some(line) = a.after_containment.line(lists.second_search.is_some()) {
        let _ = writeln!(m, "  {line}");
    }
    let mut quiet = 0usize;
    for r in &a.regions {
        let state = match &r.coverage {
            RegionCoverage::Complete if r.events == 0 => {
                quiet += 1;
                continue;
            }
            RegionCoverage::Complete => "complete".to_string(),
            RegionCoverage::Partial {
                read_back_to,
                reason,
            } => format!(
                "PARTIAL ({reason}; older than {} not read)",
                read_back_to
                    .map(ts)
                    .unwrap_or_else(|| "the window end".into())
            ),
            RegionCoverage::Failed { reason } => format!("FAILED ({reason})"),
        };
        let _ = writeln!(
            m,
            "  {:<15} {:>5} events ({}, {} denied)  {}",
            r.region,
            r.events,
            count(r.writes, "write"),
            r.denied,
            state
        );
    }
    if quiet > 0 {
        let _ = writeln!(
            m,
            "  {} {}Region(s): no events, read to the end",
            quiet,
            if quiet < a.regions.len() {
                "other "
            } else {
                ""
            }
        );
    }
    if a.total_events == 0 {
        let _ = writeln!(
            m,
            "  {}",
            match (a.complete(), lists.second_search) {
                (false, _) => "no events found in what could be read: the search was INCOMPLETE, do not read this as no activity".to_string(),
                (true, Some(Some(at))) => format!(
                    "no events found yet; the second search at {} reads what CloudTrail delivers late",
                    ts(at)
                ),
                (true, Some(None)) => "no events found".to_string(),
                (true, None) => {
                    "no events found in the searched Regions (Event history can lag a few minutes)"
                        .to_string()
                }
            }
        );
        return;
    }
    let _ = writeln!(
        m,
        "  {} events, {}, first {} last {}",
        a.total_events,
        count(a.writes, "write"),
        a.first_seen.map(ts).unwrap_or_default(),
        a.last_seen.map(ts).unwrap_or_default()
    );
    // One list of calls, with how many of each were refused (not a second list of refusals).
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (name, n) in &a.by_event {
        let event = name.rsplit(':').next().unwrap_or(name);
        let denied = a.denied.get(event).copied().unwrap_or(0).min(*n);
        calls.insert(name.clone(), *n);
        if denied > 0 {
            labels.insert(name.clone(), format!("{} ({denied} refused)", defang(name)));
        }
    }
    top(m, "calls", &calls, 15, |k| {
        labels.get(k).cloned().unwrap_or_else(|| defang(k))
    });
    top(m, "source IPs", &a.source_ips, 10, quoted);
    let mut agents: BTreeMap<String, usize> = BTreeMap::new();
    for (ua, n) in &a.user_agents {
        *agents.entry(short_agent(ua)).or_default() += n;
    }
    top(
        m,
        "user agents (shortened; full in the JSON report)",
        &agents,
        5,
        quoted,
    );
}

/// Pivots listed in a notice; the rest are in the JSON report.
const MAX_PIVOT_LINES: usize = 30;

/// The prioritised "what the attacker did": attacks on the response, then what it minted and
/// opened (what is not contained first), then persistence and the rest.
fn attacker_text(m: &mut String, a: &Activity, lists: &Lists) {
    if a.pivots.is_empty() && a.notable.is_empty() {
        return;
    }
    let _ = writeln!(m, "\nWhat the attacker did (most urgent first):");
    notable_text(m, a, &[Category::AgainstResponse], lists);
    if !a.pivots.is_empty() {
        let covered = a
            .pivots
            .iter()
            .filter(|p| p.pivot.kind.covered_by_user_deny())
            .count();
        let _ = writeln!(
            m,
            "  Credentials it minted and access it opened ({}):",
            a.pivots.len() - covered + a.covered_pivots + a.pivots_not_listed
        );
        let mut listed: Vec<&PivotReport> = a
            .pivots
            .iter()
            .filter(|p| !p.pivot.kind.covered_by_user_deny())
            .filter(|p| !(lists.open_above && is_open_pivot(p)))
            .collect();
        let open = a
            .pivots
            .iter()
            .filter(|p| lists.open_above && is_open_pivot(p))
            .count();
        if open > 0 {
            let _ = writeln!(
                m,
                "    - {open} NOT contained: listed under STILL OPEN above"
            );
        }
        // What still needs a human first.
        listed.sort_by_key(|p| {
            p.containment
                .as_ref()
                .is_some_and(|c| c.status.is_contained())
        });
        for p in listed.iter().take(MAX_PIVOT_LINES) {
            pivot_line(m, p);
        }
        if listed.len() > MAX_PIVOT_LINES {
            let _ = writeln!(
                m,
                "    - ... and {} more in the JSON report",
                listed.len() - MAX_PIVOT_LINES
            );
        }
        if covered > 0 || a.covered_pivots > 0 {
            let _ = writeln!(
                m,
                "    - {} session token(s) of the leaked key's own user (GetSessionToken / GetFederationToken): covered by its deny",
                a.covered_pivots.max(covered)
            );
        }
        if a.pivots_not_listed > 0 {
            let _ = writeln!(
                m,
                "    - {} MORE not listed (flood): search CloudTrail for CreateAccessKey and AssumeRole by the leaked key",
                a.pivots_not_listed
            );
        }
    }
    notable_text(
        m,
        a,
        &[
            Category::Persistence,
            Category::DefenceEvasion,
            Category::CredentialMinting,
            Category::Impact,
        ],
        lists,
    );
}

/// A call whose credential the pivot list (or STILL OPEN) already shows.
fn is_listed_pivot(n: &crate::analysis::Notable) -> bool {
    n.error_code.is_none()
        && match n.event_name.as_str() {
            "CreateAccessKey"
            | "AssumeRole"
            | "AssumeRoleWithSAML"
            | "AssumeRoleWithWebIdentity"
            | "AssumeRoot"
            | "GetSessionToken"
            | "GetFederationToken" => n.details.contains("newAccessKeyId="),
            "CreateLoginProfile" | "UpdateLoginProfile" => n.details.contains("userName="),
            "UpdateAssumeRolePolicy" => n.details.contains("roleName="),
            _ => false,
        }
}

/// A pivot the STILL OPEN list shows (not contained, and with something to run).
fn is_open_pivot(p: &PivotReport) -> bool {
    !p.pivot.kind.covered_by_user_deny()
        && !p
            .containment
            .as_ref()
            .is_some_and(|c| c.status.is_contained())
}

fn pivot_line(m: &mut String, p: &PivotReport) {
    let who = p
        .pivot
        .principal
        .as_deref()
        .map(quoted)
        .unwrap_or_else(|| "the leaked key's own user".into());
    let state = match &p.containment {
        Some(c) => format!("{}: {}", c.status.headline(), c.summary),
        None if p.pivot.kind == PivotKind::TrustPolicy => {
            format!(
                "REVIEW AND REVERT (not automatic): {}",
                request_as_command(&p.contain_with)
            )
        }
        None => format!(
            "NOT CONTAINED: contain with {}",
            request_as_command(&p.contain_with)
        ),
    };
    let what = match p.pivot.kind {
        PivotKind::LoginProfile => "console password".to_string(),
        PivotKind::TrustPolicy => "trust policy changed".to_string(),
        _ => defang(
            p.pivot
                .access_key_id
                .as_deref()
                .or(p.pivot.credential_id.as_deref())
                .unwrap_or("?"),
        ),
    };
    let _ = writeln!(
        m,
        "    - {} {} {} -> {what} ({who}) : {state}",
        ts(p.pivot.time),
        defang(&p.pivot.region),
        defang(&p.pivot.via),
    );
    if let Some(act) = &p.activity {
        let _ = if act.notable.is_empty() {
            writeln!(m, "      it made {}", count(act.events, "call"))
        } else {
            writeln!(
                m,
                "      it made {}; flagged: {}",
                count(act.events, "call"),
                defang(&act.notable.join(", "))
            )
        };
    }
}

fn notable_text(m: &mut String, a: &Activity, categories: &[Category], lists: &Lists) {
    for cat in categories {
        let Some(all) = a.notable.get(cat) else {
            continue;
        };
        // What STILL OPEN shows (with its commands) is not listed twice.
        let list: Vec<&crate::analysis::Notable> = all
            .iter()
            .filter(|n| !(is_listed_pivot(n) || (lists.open_above && open::is_open_notable(n))))
            .collect();
        let above = all.len() - list.len();
        let total = a
            .notable_counts
            .get(cat)
            .copied()
            .unwrap_or(all.len())
            .saturating_sub(above);
        if total == 0 {
            continue;
        }
        let _ = writeln!(
            m,
            "  {} ({total}{}, most severe first):",
            cat.title(),
            if above > 0 {
                format!(", plus {above} shown above")
            } else {
                String::new()
            }
        );
        for n in list.iter().take(10) {
            let outcome = n
                .error_code
                .as_deref()
                .map(|c| format!(" ({})", defang(c)))
                .unwrap_or_default();
            let _ = writeln!(
                m,
                "    - {} {} {}:{} {}{outcome}",
                ts(n.time),
                defang(&n.region),
                defang(short_source(&n.event_source)),
                defang(&n.event_name),
                defang(&n.details)
            );
        }
        if total > 10 {
            let listed = list.len().min(10);
            let in_json = list.len() - listed;
            let _ = writeln!(
                m,
                "    ... and {} more ({in_json} of them in the JSON report)",
                total - listed
            );
        }
    }
}

fn top(
    m: &mut String,
    title: &str,
    map: &BTreeMap<String, usize>,
    n: usize,
    show: impl Fn(&str) -> String,
) {
    if map.is_empty() {
        return;
    }
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(m, "  {title}:");
    for (k, c) in v.iter().take(n) {
        let _ = writeln!(m, "    {c:>5}  {}", show(k));
    }
    if v.len() > n {
        let _ = writeln!(m, "    ... and {} more", v.len() - n);
    }
}

fn trigger_line(t: &serde_json::Value) -> String {
    let raw = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let get = |k: &str| defang(&raw(k));
    match get("kind").as_str() {
        "guard_duty" => format!(
            "GuardDuty {} (finding {}, region {}, remote IP {})",
            get("finding_type"),
            get("finding_id"),
            get("region"),
            get("remote_ip")
        ),
        "health" => format!(
            "AWS Health {} ({})",
            get("event_type_code"),
            get("event_arn")
        ),
        "manual" => {
            // The default request ID is KEY:REQUESTED-BY: said once, not twice.
            let id = raw("request_id");
            let named = if id.ends_with(&format!(":{}", raw("requested_by"))) {
                String::new()
            } else {
                format!(" {}", quoted(&id))
            };
            format!(
                "manual request{named} by {}: {}",
                quoted(&raw("requested_by")),
                quoted(&raw("reason"))
            )
        }
        "pivot" => format!(
            "minted by leaked key {} via {}",
            get("parent_key"),
            get("via")
        ),
        "guard_duty_sample" => format!(
            "GuardDuty SAMPLE {} ({})",
            get("finding_type"),
            get("finding_id")
        ),
        other => other.to_owned(),
    }
}

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

/// A pivot's containment request as the command a person runs: `killswitch respond …` for a
/// credential, the AWS CLI command otherwise. Names the key's holder chose go in only when they
/// are safe on a command line; otherwise the flag is left for the person to fill in.
fn request_as_command(request: &serde_json::Value) -> String {
    let field = |k: &str| request.get(k).and_then(|v| v.as_str());
    if let Some(command) = field("command") {
        return inert(command);
    }
    let Some(key) = field("access_key_id").and_then(|k| AccessKeyId::parse(k).ok()) else {
        return "killswitch respond --access-key-id KEY --reason WHY".into();
    };
    let mut out = format!("killswitch respond --access-key-id {key}");
    for (flag, name) in [("--user-name", "user_name"), ("--role-name", "role_name")] {
        if let Some(v) = field(name) {
            match super::open::shell_safe(v) {
                Some(v) => out.push_str(&format!(" {flag} {v}")),
                None => out.push_str(&format!(" {flag} NAME")),
            }
        }
    }
    let reason = field("reason").unwrap_or("minted by the leaked key");
    out.push_str(&format!(
        " --reason \"{}\"",
        inert(reason).replace(['"', '$', '`', '\\'], "")
    ));
    out
}

/// The short notice's sentence under its headline (also the chat card's, before a summary).
pub(crate) fn short_outcome(status: Status) -> &'static str {
    match status {
        Status::Contained => "The leaked key is contained; the immediate read-back holds.",
        Status::AlreadyContained => "The key was already contained; nothing had to change.",
        Status::Contested => {
            "Containment was UNDONE right after it was applied and has been re-applied: someone is fighting it."
        }
        Status::Failed => {
            "Containment did NOT complete: act by hand now (see the failed steps); Lambda retries."
        }
        _ => "",
    }
}

/// What a FINAL notice's subject says of the sweep: `3 NEW events, search closed`.
pub(crate) fn final_what(sw: &SweepResult) -> String {
    let mut what = match (sw.new_events, sw.new_pivots) {
        (0, 0) => "nothing new".to_string(),
        (n, _) => format!("{n} NEW events"),
    };
    if sw.uncontained_pivots > 0 {
        what.push_str(&format!(
            ", {} pivot(s) NOT contained",
            sw.uncontained_pivots
        ));
    }
    what.push_str(if sw.closed {
        ", search closed"
    } else {
        ", search NOT closed"
    });
    what
}

/// "1 write", "3 writes".
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pivot_left_open_reads_as_a_command_to_run_not_as_json() {
        let request = serde_json::json!({
            "access_key_id": "AKIA4XMPLEBACKDOOR01",
            "user_name": "mallory-backdoor",
            "reason": "minted by leaked key AKIAIOSFODNN7EXAMPLE via CreateAccessKey",
            "requested_by": "killswitch (follow the pivot)",
        });
        assert_eq!(
            super::request_as_command(&request),
            "killswitch respond --access-key-id AKIA4XMPLEBACKDOOR01 --user-name mallory-backdoor --reason \"minted by leaked key AKIAIOSFODNN7EXAMPLE via CreateAccessKey\""
        );
        // A name the key's holder chose that a shell would read as more than a name.
        let planted = serde_json::json!({
            "access_key_id": "AKIA4XMPLEBACKDOOR01",
            "user_name": "x;curl evil",
            "reason": "r",
        });
        assert!(
            super::request_as_command(&planted).contains("--user-name NAME"),
            "{}",
            super::request_as_command(&planted)
        );
        let revert = serde_json::json!({"command": "aws iam delete-login-profile --user-name bob"});
        assert_eq!(
            super::request_as_command(&revert),
            "aws iam delete-login-profile --user-name bob"
        );
    }

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

    #[test]
    fn activity_counts_bounded_distinct_values() {
        let mut a = Activity::default();
        for i in 0..(MAX_DISTINCT + 50) {
            a.add(&ApiCall {
                event_id: Some(format!("e{i}")),
                time: Utc::now(),
                event_name: "ListUsers".into(),
                event_source: "iam.amazonaws.com".into(),
                region: "us-east-1".into(),
                source_ip: Some(format!("10.0.{}.{}", i / 256, i % 256)),
                user_agent: None,
                error_code: Some("AccessDenied".into()),
                read_only: Some(true),
                request_parameters: None,
                response_elements: None,
                caller: None,
            });
        }
        assert_eq!(a.total_events, MAX_DISTINCT + 50);
        assert_eq!(a.event_ids.len(), MAX_DISTINCT + 50);
        assert_eq!(a.source_ips.len(), MAX_DISTINCT + 1);
        assert_eq!(a.source_ips.get("(other)"), Some(&50));
        assert_eq!(a.denied.get("ListUsers"), Some(&(MAX_DISTINCT + 50)));
        assert_eq!(a.by_event.get("iam:ListUsers"), Some(&(MAX_DISTINCT + 50)));
    }
}

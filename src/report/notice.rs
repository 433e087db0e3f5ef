//! The SNS notice on-call reads (email, SMS, the terminal): the parts `words` builds, laid out
//! as text, full and short, under an ASCII subject of at most 99 characters. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::words::{
    self, Form, Heading, Lists, inert, open, quoted, sanitize_subject, summary, ts,
};
use super::{MAX_MESSAGE_BYTES, MAX_SUBJECT, Report, SweepResult, Verification};

impl Report {
    /// `[killswitch] CONTAINED: AKIA... (IAM user alice) acct 123456789012`, ASCII, < 100 chars.
    pub fn subject(&self) -> String {
        subject(Heading::of(self, Form::Full))
    }

    /// The short notice's subject: the headline, the key, "full report follows".
    pub fn short_subject(&self) -> String {
        subject(Heading::of(self, Form::Short))
    }

    /// `[killswitch] STILL TRYING (count 3 -> 7), still contained: AKIA... acct 1111...`
    pub fn still_trying_subject(&self, was: u64, now: u64) -> String {
        subject(Heading::of(self, Form::StillTrying { was, now }))
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
        let _ = writeln!(m, "{}\n", summary::short_outcome(self.status));
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

    /// The SNS message: what an on-call engineer reads at 3 a.m.
    pub fn message(&self) -> String {
        let mut m = String::new();
        match &self.sweep_result {
            Some(sw) => self.final_head(&mut m, sw),
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
            verification_lines(&mut m, v);
        }
        words::investigation(&mut m, &self.investigation, &Lists::of(self));
        self.for_a_human(&mut m);
        within_sns_limit(m)
    }

    /// The sweep's report opens with what the second search read and found.
    fn final_head(&self, m: &mut String, sw: &SweepResult) {
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
        let _ = writeln!(m, "Account:    {}", summary::account(self));
        let _ = writeln!(m, "Trigger:    {}", summary::trigger(&self.trigger));
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

    /// The next steps (a step's later lines are commands to paste), then the undo commands.
    fn for_a_human(&self, m: &mut String) {
        if !self.next_steps.is_empty() {
            let _ = writeln!(m, "\nStill for a human:");
            for n in &self.next_steps {
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
    }
}

fn verification_lines(m: &mut String, v: &Verification) {
    let _ = writeln!(
        m,
        "\nVerification: {}{}",
        match (v.holds, v.settled) {
            (true, true) =>
                "containment holds (read back one propagation window after the last write)",
            (true, false) =>
                "containment writes in place (read back inside IAM's propagation window: IAM shows them, it may not enforce them yet)",
            (false, _) => "CONTAINMENT DOES NOT HOLD",
        },
        if v.contested {
            " (CONTESTED: it was undone and written again)"
        } else {
            ""
        }
    );
    for c in &v.checks {
        let _ = writeln!(m, "  - {} at {}: {}", c.phase, ts(c.at), inert(&c.detail));
    }
}

/// SNS messages are at most 256 KiB: a longer one is cut, and says where the rest is.
fn within_sns_limit(mut m: String) -> String {
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

/// A subject fitted to SNS: printable ASCII under 100 characters.
fn subject(heading: Heading) -> String {
    match heading {
        Heading::Whole(s) => sanitize_subject(&s),
        Heading::Sample { finding, acct } => {
            let head = words::subject::SAMPLE_HEAD;
            // The account stays; a long finding type gives way.
            let room = MAX_SUBJECT.saturating_sub(head.len() + acct.len() + 3);
            let mut finding = words::defang(finding);
            if finding.len() > room {
                finding = format!("{}...", finding.chars().take(room).collect::<String>());
            }
            sanitize_subject(&format!("{head}{finding}{acct}"))
        }
        Heading::Short { fixed, principal } => {
            sanitize_subject(&format!("{fixed} ({})", inert(principal)))
        }
        Heading::Full {
            headline,
            open,
            key,
            principal,
            acct,
            account_is_the_point,
        } => {
            let head = match open {
                Some(open) => format!("{headline} - {open}"),
                None => headline.to_string(),
            };
            full_subject(
                &format!("[killswitch] {head}: {key}"),
                principal,
                &acct,
                account_is_the_point,
            )
        }
    }
}

/// What is open comes first; then the principal (its session name is in the body), and the
/// account unless it is a rejection's point; a long principal is cut to fit.
fn full_subject(fixed: &str, principal: &str, acct: &str, account_is_the_point: bool) -> String {
    let who = format!(" ({})", inert(principal));
    let short = inert(words::subject::without_session(principal));
    let mut candidates = vec![
        format!("{fixed}{who}{acct}"),
        format!("{fixed} ({short}){acct}"),
    ];
    if !account_is_the_point {
        candidates.push(format!("{fixed} ({short})"));
    }
    if let Some(fits) = candidates.into_iter().find(|c| c.len() <= MAX_SUBJECT) {
        return sanitize_subject(&fits);
    }
    let room = MAX_SUBJECT.saturating_sub(format!("{fixed}{acct}").len() + " (...)".len());
    if room < 12 {
        return sanitize_subject(&format!("{fixed}{acct}"));
    }
    let cut: String = short.chars().take(room).collect();
    sanitize_subject(&format!("{fixed} ({cut}...){acct}"))
}

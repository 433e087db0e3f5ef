//! What a person at a terminal reads: the same notice text on-call gets, what happened to it,
//! and one closing line. Pure.

use std::fmt::Write as _;
use std::time::Duration;

use crate::handler::Response;
use crate::oncall::{KeyState, Restored};
use crate::ports::KeyStatus;
use crate::report::{Notification, Report, Status, inert, quoted, ts};

/// Whether to color: a terminal, and `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn use_color(is_terminal: bool, no_color: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty)
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    } else {
        text.to_owned()
    }
}

/// A recorded value on the operator's own terminal: no control or direction-changing character
/// (they could rewrite the screen), but addresses and names as written: a terminal makes no
/// link of `alice@example.com`, so the notices' defanging would only garble it.
pub(crate) fn on_terminal(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_control()
                && !('\u{202a}'..='\u{202e}').contains(c)
                && !('\u{2066}'..='\u{2069}').contains(c)
        })
        .take(256)
        .collect()
}

/// Each report as its notice reads, and what became of the notice.
pub fn reports(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(out, "{}", r.subject());
        let _ = writeln!(out, "{}", "-".repeat(r.subject().len().min(72)));
        out.push_str(&r.message());
        let _ = writeln!(
            out,
            "\nNotice: {}\n",
            match &r.notification {
                Notification::Sent { .. } => "sent to the SNS topic".to_string(),
                Notification::NotPublished { .. } =>
                    "NOT published (no topic, or --no-notify): the text above is all there is"
                        .into(),
                Notification::Suppressed { reason } => format!("not sent: {reason}"),
                Notification::Failed { error, .. } => format!("FAILED to send: {error}"),
                Notification::Pending => "not sent".into(),
            }
        );
    }
    out
}

/// `== CONTAINED (1 OPEN) AKIA... IAM user bob, acct 1111... | 12.3 s`: one line per report.
pub fn closing(response: &Response, elapsed: Duration, color: bool) -> String {
    let finals = if response.sweeps.is_empty() {
        &response.reports
    } else {
        &response.sweeps
    };
    let mut out = String::new();
    for r in finals {
        let open = r.open.len();
        let mut head = r.status.headline().to_string();
        if open > 0 {
            let _ = write!(head, " ({open} OPEN)");
        }
        let _ = writeln!(
            out,
            "== {} {} {}, acct {}",
            paint(&head, closing_color(r.status, open), color),
            r.access_key_id,
            inert(&r.principal),
            r.account.as_deref().unwrap_or("unknown"),
        );
    }
    let _ = write!(out, "== done in {:.1} s", elapsed.as_secs_f64());
    out
}

/// Red for what needs a human (an open door, a failure, a fight, another account's key), green
/// for contained, yellow for the rest.
fn closing_color(status: Status, open: usize) -> &'static str {
    if open > 0 {
        return "1;31";
    }
    match status {
        Status::Failed | Status::Contested | Status::Rejected => "1;31",
        Status::Contained | Status::AlreadyContained => "1;32",
        Status::Refused
        | Status::Sample
        | Status::DryRun
        | Status::KeyNotFound
        | Status::Restored => "1;33",
    }
}

/// What `killswitch restore` did, for a person: a refusal's reasons first (once each), then the
/// plan NOT carried out; otherwise what was done and what failed. Then whether it is in the
/// incident record (and why not), the notices, and the next step.
pub fn restored(r: &Restored) -> String {
    use super::restore::item;
    let mut out = String::new();
    let list = |out: &mut String, head: &str, items: &[String]| {
        if !items.is_empty() {
            let _ = writeln!(out, "{head}");
            for i in items {
                out.push_str(&item(&on_terminal(i)));
            }
        }
    };
    let key = &r.access_key_id;
    if !r.refused.is_empty() {
        let _ = writeln!(out, "RESTORE REFUSED for {key}: nothing was changed.");
        list(&mut out, "Refused because:", &r.refused);
        list(&mut out, "The plan, NOT carried out:", &r.plan);
    } else {
        let _ = writeln!(
            out,
            "{} for {key}.",
            if r.done.is_empty() && !r.failed.is_empty() {
                "RESTORE FAILED"
            } else if r.failed.is_empty() {
                "RESTORED"
            } else {
                "RESTORED PARTLY"
            }
        );
        // Listed before the confirmation, right above: counted here, not repeated.
        if !r.forced_past.is_empty() {
            let _ = writeln!(
                out,
                "Forced past {} refusal(s) (--force; listed above and in the RESTORING notice).",
                r.forced_past.len()
            );
        }
        list(&mut out, "Done:", &r.done);
        list(&mut out, "FAILED:", &r.failed);
        if r.done.is_empty() {
            list(&mut out, "The plan, NOT carried out:", &r.plan);
        }
    }
    list(&mut out, "Not checked:", &r.unchecked);
    let recorded = match &r.not_recorded {
        None if r.recorded => "yes".to_owned(),
        None => "NO".to_owned(),
        Some(why) => format!("NO: {}", on_terminal(why)),
    };
    out.push_str(&super::restore::hanging(
        "Recorded in the incident table: ",
        "  ",
        &recorded,
    ));
    let sent = |ok: bool| if ok { "sent" } else { "NOT sent" };
    if r.refused.is_empty() {
        let _ = writeln!(
            out,
            "Notices to on-call: before acting {}, after {}",
            sent(r.announced),
            sent(r.notified)
        );
    } else {
        let _ = writeln!(
            out,
            "Notice to on-call: RESTORE REFUSED {}",
            sent(r.notified)
        );
    }
    list(&mut out, "Next:", &r.next_steps);
    out
}

/// `killswitch status` for a person.
pub fn status(s: &KeyState, color: bool) -> String {
    let mut out = String::new();
    key_lines(&mut out, s, color);
    contained_line(&mut out, s);
    in_place_lines(&mut out, s);
    beyond_iam_lines(&mut out, s);
    if let Some(u) = &s.last_used {
        let _ = writeln!(
            out,
            "  last used:  {} in {} ({})",
            u.last_used.map(ts).unwrap_or_else(|| "never".into()),
            u.region.as_deref().unwrap_or("-"),
            u.service.as_deref().unwrap_or("-")
        );
    }
    for r in &s.restores {
        let _ = writeln!(
            out,
            "  restored:   {} by {} ({})",
            ts(r.at),
            quoted(&r.by),
            quoted(&r.reason)
        );
    }
    out
}

/// Whose key, in which account, whether IAM knows it, and whether it is active.
fn key_lines(out: &mut String, s: &KeyState, color: bool) {
    let owner = match (&s.user_name, &s.role_name) {
        (Some(u), _) => format!("IAM user {u}"),
        (None, Some(r)) => format!("role {r}"),
        (None, None) => "owner unknown".into(),
    };
    let _ = writeln!(
        out,
        "Key {}: {owner}, account {}",
        s.access_key_id,
        s.account.as_deref().unwrap_or("unknown")
    );
    if !s.exists {
        let _ = writeln!(
            out,
            "  {}",
            paint(
                "NOT FOUND: IAM does not know this key (deleted, or another account's: check --profile)",
                "1;31",
                color
            )
        );
    }
    if let Some(st) = s.key_status {
        let code = match st {
            KeyStatus::Active => "1;31",
            KeyStatus::Inactive | KeyStatus::Other => "1;32",
        };
        let _ = writeln!(
            out,
            "  key:        {}",
            paint(&format!("{st:?}"), code, color)
        );
    }
}

/// Which incident contained the key, from the incident record.
fn contained_line(out: &mut String, s: &KeyState) {
    let Some(c) = &s.contained else {
        let _ = writeln!(
            out,
            "  contained:  no incident record (none, or KILLSWITCH_INCIDENT_TABLE not set)"
        );
        return;
    };
    let trigger = if c.trigger == c.incident_id || c.trigger.is_empty() {
        String::new()
    } else {
        format!(" (trigger {})", on_terminal(&c.trigger))
    };
    let _ = writeln!(
        out,
        "  contained:  {} by incident {}{trigger}{}{}",
        c.at,
        on_terminal(&c.incident_id),
        c.verified_at
            .as_deref()
            .map(|v| format!(", verified {v}"))
            .unwrap_or_default(),
        if c.current { "" } else { " -- since RESTORED" }
    );
}

/// A user's session revocation a restore left behind (`user/NAME: KillSwitchRevokeOlderSessions`).
fn revokes_user_sessions(p: &str) -> bool {
    p.starts_with("user/") && p.ends_with(&format!(": {}", crate::policy::ROLE_POLICY_NAME))
}

/// Every killswitch policy IAM holds now (the JSON's `killswitch_policies`), with what it does
/// when that is not its name's plain meaning; the role's revocations, the boundary, and what the
/// user's deny blocks besides the key.
fn in_place_lines(out: &mut String, s: &KeyState) {
    for p in &s.killswitch_policies {
        let note = match &s.user_sessions_revoked_before {
            Some(cutoff) if revokes_user_sessions(p) => format!(
                " (left by a restore: sessions the user minted before {cutoff} stay denied; delete it once they expired, 36 h after)"
            ),
            _ => String::new(),
        };
        let _ = writeln!(out, "  in place:   {}{note}", inert(p));
    }
    let elsewhere = s.quarantine.is_some()
        || s.identity_center.is_some()
        || s.permissions_boundary.as_deref() == Some(crate::policy::MANAGED_DENY_ALL_ARN);
    if s.killswitch_policies.is_empty() && !elsewhere {
        let _ = writeln!(out, "  in place:   nothing killswitch places");
    }
    if let Some(cutoff) = &s.role_sessions_revoked_before {
        let _ = writeln!(
            out,
            "  role:       every session issued before {cutoff} is denied"
        );
    }
    for session in &s.role_sessions_denied {
        let _ = writeln!(out, "  role:       session {} denied", inert(session));
    }
    if let Some(b) = &s.permissions_boundary {
        let _ = writeln!(out, "  boundary:   {}", inert(b));
    }
    let user_denied = s
        .killswitch_policies
        .iter()
        .any(|p| p.starts_with("user/") && !revokes_user_sessions(p));
    if !user_denied {
        return;
    }
    if s.also_blocked.is_empty() {
        let _ = writeln!(
            out,
            "  the deny also blocks: the user's console sign-in and sessions (no other key)"
        );
    } else {
        let _ = writeln!(
            out,
            "  the deny also blocks: the user's console sign-in, sessions and {}",
            s.also_blocked.join(", ")
        );
    }
}

/// What denies the key outside IAM's policies on it: the org SCP, Identity Center.
fn beyond_iam_lines(out: &mut String, s: &KeyState) {
    if let Some(q) = &s.quarantine {
        let _ = writeln!(
            out,
            "  org SCP:    {} ({}) on account {} denies {}: {}",
            q.placed.policy_name,
            q.placed.policy_id,
            q.placed.account,
            inert(&q.placed.entry.to_string()),
            q.read_back
        );
    }
    let Some(p) = &s.identity_center else {
        return;
    };
    let _ = writeln!(
        out,
        "  identity center: user {}{} {}: {}",
        inert(&p.user),
        p.user_id
            .as_deref()
            .map(|id| format!(" ({})", inert(id)))
            .unwrap_or_default(),
        if p.denied { "DENIED" } else { "NOT denied" },
        inert(&p.read_back)
    );
    if let Some(r) = &p.assignment_removed {
        let _ = writeln!(
            out,
            "  identity center: assignment of permission set {} to account {} REMOVED at {} (restore puts it back)",
            inert(&r.permission_set),
            r.account,
            ts(r.at)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_the_operators_address_as_typed_and_no_control_character() {
        assert_eq!(
            super::on_terminal("manual:AKIAIOSFODNN7EXAMPLE:alice@example.com"),
            "manual:AKIAIOSFODNN7EXAMPLE:alice@example.com"
        );
        assert_eq!(super::on_terminal("a\u{1b}[2Jb\u{202e}c\n"), "a[2Jbc");
    }

    #[test]
    fn color_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some("")));
        assert!(!use_color(true, Some("1")));
        assert!(!use_color(false, None));
        assert_eq!(paint("x", "1;31", false), "x");
        assert!(paint("x", "1;31", true).contains('\u{1b}'));
    }
}

//! The Security Hub workflow: once containment holds, the incident's finding moves to NOTIFIED
//! with a note saying what was applied and verified; a restore adds a note. Never suppressed,
//! never resolved: a human closes it. Our own update is imported again as "Findings - Imported"
//! with workflow NOTIFIED, which the Security Hub trigger ignores (NEW findings only).

use chrono::Utc;
use tracing::warn;

use super::Step;
use crate::config::Config;
use crate::incident::{FindingRef, Incident};
use crate::ports::Findings;
use crate::report::{Outcome, Report, ts};

/// After the delayed verification: NOTIFIED and the note, when it holds. Security Hub trouble
/// is a step outcome, never a containment outcome.
pub async fn notified<F: Findings>(
    cloud: &F,
    config: &Config,
    incident: &Incident,
    report: &mut Report,
) {
    let Some(finding) = incident.finding.as_ref() else {
        return;
    };
    if !config.security_hub_updates || report.dry_run {
        return;
    }
    let holds =
        report.status.is_contained() && report.verification.as_ref().is_some_and(|v| v.holds);
    if !holds {
        // Not NOTIFIED while it does not hold: the finding stays NEW for a human to pick up.
        return;
    }
    let verified_at = report
        .verification
        .as_ref()
        .and_then(|v| v.checks.last())
        .map(|c| ts(c.at))
        .unwrap_or_default();
    let applied: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.outcome.in_place())
        .filter(|s| named_in_note(s.step))
        .map(|s| s.step.name())
        .collect();
    let note = format!(
        "killswitch {}: key {} {} ({}), verified at {verified_at} after IAM's propagation window. On-call notified (incident {}). Undo: killswitch restore --access-key-id {}",
        report.status.headline(),
        report.access_key_id,
        report.principal,
        applied.join(", "),
        report.incident_id,
        report.access_key_id,
    );
    update(cloud, finding, true, &note, report).await;
}

/// The containment steps the finding's note lists as applied. The Identity Center deny
/// ([`Step::DenyPortalUser`]) is not among them.
fn named_in_note(step: Step) -> bool {
    match step {
        Step::DeactivateKey | Step::DenyUser | Step::RevokeRoleSessions => true,
        Step::DenyPortalUser
        | Step::CheckFinding
        | Step::EnterAccount
        | Step::CheckAccount
        | Step::ResolveOwner
        | Step::Record
        | Step::HandOff
        | Step::Verify
        | Step::Investigate
        | Step::Notify
        | Step::UpdateFinding
        | Step::Quarantine
        | Step::RemoveAssignment
        | Step::TagPrincipal => false,
    }
}

/// What `killswitch restore` says on the finding (which it keeps at NOTIFIED, never NEW again).
pub fn restore_note(key: &str, by: &str, reason: &str) -> String {
    format!(
        "killswitch: containment of key {key} was lifted by {by} at {} with killswitch restore ({reason}). The finding stays open for a human to resolve.",
        ts(Utc::now())
    )
}

async fn update<F: Findings>(
    cloud: &F,
    finding: &FindingRef,
    notified: bool,
    note: &str,
    report: &mut Report,
) {
    let at = Utc::now();
    match cloud.update_finding(finding, notified, note).await {
        Ok(true) => report.record(
            Step::UpdateFinding,
            Outcome::Done,
            format!(
                "Security Hub finding in {} set to NOTIFIED with a note",
                finding.region
            ),
            at,
        ),
        Ok(false) => report.record(
            Step::UpdateFinding,
            Outcome::NotFound,
            format!(
                "Security Hub in {} does not hold the finding (not enabled, or not imported yet)",
                finding.region
            ),
            at,
        ),
        Err(e) => {
            warn!(error = %e.chain(), "could not update the Security Hub finding");
            report.record(Step::UpdateFinding, Outcome::Failed, e.chain(), at);
        }
    }
}

//! Incident records outlive releases: a record the last release wrote (`tests/fixtures/records/`,
//! one per kind of plan and extra layer) must load in this one and be written back unchanged,
//! so the names the record persists (`Plan`, `Deny`, the quarantine entry, the removed
//! assignment, pivots) stay frozen.

use killswitch::record::IncidentRecord;
use killswitch::vocab::{Deny, Plan};

fn fixture(name: &str) -> (serde_json::Value, IncidentRecord) {
    let path = format!(
        "{}/tests/fixtures/records/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    let record: IncidentRecord =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} no longer loads: {e}"));
    (raw, record)
}

fn round_trips(name: &str) -> IncidentRecord {
    let (raw, record) = fixture(name);
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        raw,
        "{name}: this release writes the record differently"
    );
    record
}

#[test]
fn a_locked_out_user_with_a_quarantine_and_pivots_loads_and_round_trips() {
    let r = round_trips("user-locked-out-quarantined");
    let plan = &r.applied.as_ref().unwrap().plan;
    assert!(matches!(
        plan,
        Plan::User {
            deny: Deny::LockedOutBounded,
            ..
        }
    ));
    assert_eq!(r.pivots.len(), 2);
    assert_eq!(r.pivots_not_kept, 4);
    assert_eq!(r.created_users[0].0, "bob");
    assert_eq!(r.quarantine.unwrap().entry.to_string(), "user alice");
}

#[test]
fn a_role_session_with_a_cutoff_quarantine_loads_and_round_trips() {
    let r = round_trips("role-session-and-cutoff");
    let plan = &r.applied.as_ref().unwrap().plan;
    assert_eq!(plan.session(), Some("AROAEXAMPLEROLEID1234:i-0stolen"));
    assert!(
        r.quarantine
            .unwrap()
            .entry
            .to_string()
            .starts_with("sessions of role deployer issued before")
    );
}

#[test]
fn a_portal_session_with_a_removed_assignment_loads_and_round_trips() {
    let r = round_trips("portal-assignment-removed");
    assert!(r.applied.as_ref().unwrap().plan.is_portal());
    assert_eq!(r.assignment.unwrap().permission_set, "AdministratorAccess");
}

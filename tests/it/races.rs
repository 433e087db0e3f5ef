//! Duplicate and concurrent deliveries: one consistent end state, no stacking, a session cutoff
//! that never moves backwards, and a truthful outcome for every delivery.

use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};
use killswitch::incident::Received;
use killswitch::playbook::{Context, Step, respond};
use killswitch::policy::{self, ROLE_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::KeyStatus;
use killswitch::report::{Outcome, Status};
use killswitch::trigger::parse;

use crate::support::{FIXTURE_KEY, FakeCloud, config, event, responder};

fn incident(name: &str) -> killswitch::incident::Incident {
    match parse(event(name)).unwrap() {
        Received::Incidents(mut list) => list.remove(0),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_deliveries_of_one_finding_agree() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let cfg = config();
    let me = responder();
    let pacer = killswitch::pacing::Pacer::new();
    let incident = incident("guardduty-iam-user-finding.json");
    let ctx = Context {
        config: &cfg,
        responder: &me,
        now: Utc::now(),
        investigation_deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        force_dry_run: false,
        hand_off: false,
        operator: None,
        pacer: &pacer,
    };
    let reports =
        futures::future::join_all((0..100).map(|_| respond(&cloud, &incident, &ctx))).await;

    assert_eq!(
        cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    let policies: Vec<_> = cloud
        .state
        .lock()
        .unwrap()
        .policies
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        policies,
        [("user/alice".to_string(), USER_POLICY_NAME.to_string())],
        "stacked policies"
    );
    for r in &reports {
        assert!(
            matches!(r.status, Status::Contained | Status::AlreadyContained),
            "{:?}: {}",
            r.status,
            r.summary
        );
        assert!(r.verification.as_ref().unwrap().holds);
    }
    // Truthful: the deliveries that say they deactivated are exactly the calls IAM received.
    let said_done = reports
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| s.step == Step::DeactivateKey && s.outcome == Outcome::Done)
        .count();
    let calls = cloud
        .calls()
        .iter()
        .filter(|(a, _)| a == "iam:UpdateAccessKey")
        .count();
    assert_eq!(said_done, calls);
    // Without an incident store every delivery announces and reports (short + full); with one,
    // duplicates are silent (tests/it/phases.rs).
    assert_eq!(cloud.published().len(), 200);
}

#[tokio::test(start_paused = true)]
async fn interleaved_older_and_newer_deliveries_end_with_the_newer_cutoff() {
    let mut cfg = config();
    cfg.verify_delay = Duration::from_secs(1);
    cfg.role_wide = vec!["ci-deployer".into()];
    let me = responder();
    let pacer = killswitch::pacing::Pacer::new();
    let incident = incident("guardduty-assumed-role-finding.json");
    for round in 0..20 {
        let cloud = FakeCloud::default();
        let newer_now = Utc::now() + TimeDelta::seconds(30);
        let older_now = Utc::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let newer = Context {
            config: &cfg,
            responder: &me,
            now: newer_now,
            investigation_deadline: deadline,
            force_dry_run: false,
            hand_off: false,
            operator: None,
            pacer: &pacer,
        };
        let older = Context {
            config: &cfg,
            responder: &me,
            now: older_now,
            investigation_deadline: deadline,
            force_dry_run: false,
            hand_off: false,
            operator: None,
            pacer: &pacer,
        };
        // Alternate which one starts first.
        let (a, b) = if round % 2 == 0 {
            tokio::join!(
                respond(&cloud, &incident, &newer),
                respond(&cloud, &incident, &older)
            )
        } else {
            let (b, a) = tokio::join!(
                respond(&cloud, &incident, &older),
                respond(&cloud, &incident, &newer)
            );
            (a, b)
        };
        let cutoff =
            policy::revocation_cutoff(&cloud.policy("role/ci-deployer", ROLE_POLICY_NAME).unwrap())
                .unwrap();
        assert_eq!(
            cutoff,
            policy::cutoff_for(newer_now),
            "round {round}: cutoff moved backwards"
        );
        for r in [&a, &b] {
            assert!(
                matches!(
                    r.status,
                    Status::Contained | Status::AlreadyContained | Status::Contested
                ),
                "round {round}: {:?} {}",
                r.status,
                r.summary
            );
            assert!(r.verification.as_ref().unwrap().holds, "round {round}");
        }
        let policies = cloud.state.lock().unwrap().policies.len();
        assert_eq!(policies, 1, "round {round}: stacked policies");
    }
}

/// Sessions the holder opens while the invocation is still reading (a cold start, a slow first
/// wave) must fall before the cutoff: it is taken when the policy is written, not when the
/// invocation began.
#[tokio::test]
async fn a_role_cutoff_is_taken_when_it_is_written_not_when_the_invocation_began() {
    let mut cfg = config();
    cfg.role_wide = vec!["ci-deployer".into()];
    let me = responder();
    let pacer = killswitch::pacing::Pacer::new();
    let incident = incident("guardduty-assumed-role-finding.json");
    let cloud = FakeCloud::default();
    let began = Utc::now() - TimeDelta::minutes(10);
    let ctx = Context {
        config: &cfg,
        responder: &me,
        now: began,
        investigation_deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        force_dry_run: false,
        hand_off: false,
        operator: None,
        pacer: &pacer,
    };
    let before_writing = Utc::now();
    let report = respond(&cloud, &incident, &ctx).await;
    assert_eq!(report.status, Status::Contained, "{report:?}");
    let cutoff = policy::revocation_cutoff(
        &cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .expect("the role-wide revocation"),
    )
    .unwrap();
    assert!(
        cutoff
            >= before_writing
                .duration_trunc(TimeDelta::seconds(1))
                .unwrap(),
        "cutoff {cutoff} is before the write ({before_writing}); the invocation began {began}"
    );
}

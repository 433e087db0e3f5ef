//! The CloudTrail search over `FakeCloud`: every Region, pacing, throttling, failures, deadlines,
//! and following the pivot.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use chrono::{TimeDelta, Utc};
use killswitch::analysis::PivotKind;
use killswitch::handler::{App, Phases, handle};
use killswitch::policy::ROLE_POLICY_NAME;
use killswitch::ports::{ApiCall, KeyStatus};
use killswitch::report::{Activity, Investigation, RegionCoverage, Report, Status};
use serde_json::Value;

use crate::support::{FIXTURE_KEY, FakeCloud, api_call, app, event};

const REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];

async fn report(app: &App<FakeCloud>, payload: Value) -> Report {
    app.cloud.raise(&payload);
    handle(
        app,
        payload,
        SystemTime::now() + Duration::from_secs(600),
        false,
        Phases::Both,
    )
    .await
    .unwrap()
    .reports
    .remove(0)
}

fn activity(r: &Report) -> &Activity {
    match &r.investigation {
        Investigation::Ran(a) => a,
        other => panic!("{other:?}"),
    }
}

fn seed(cloud: &FakeCloud, region: &str, n: usize) {
    let now = Utc::now();
    cloud.add_events(
        region,
        (0..n)
            .map(|i| {
                let mut c = api_call(
                    "DescribeInstances",
                    now - TimeDelta::seconds(i as i64 + 1),
                    None,
                );
                c.region = region.into();
                c
            })
            .collect(),
    );
}

/// The strictest reading of LookupEvents' limit: never 3 calls of one Region within 1 s (plus
/// the 50 ms margin the pacing keeps for arrival jitter), and not one throttle from the fake's
/// sliding-window limiter.
fn assert_paced(cloud: &FakeCloud) {
    let s = cloud.state.lock().unwrap();
    assert!(
        s.lookups_throttled.is_empty(),
        "throttled by the strict limiter: {:?}",
        s.lookups_throttled
    );
    let mut per_region: HashMap<String, Vec<tokio::time::Instant>> = HashMap::new();
    for (region, at) in &s.lookups {
        per_region.entry(region.clone()).or_default().push(*at);
    }
    for (region, times) in per_region {
        for w in times.windows(3) {
            assert!(
                w[2] - w[0] >= Duration::from_millis(1050),
                "{region}: three calls within {:?}",
                w[2] - w[0]
            );
        }
    }
}

/// Calls per second of one Region's search, first call to last.
fn rate(cloud: &FakeCloud, region: &str) -> f64 {
    let s = cloud.state.lock().unwrap();
    let times: Vec<_> = s
        .lookups
        .iter()
        .filter(|(r, _)| r == region)
        .map(|(_, t)| *t)
        .collect();
    (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]).as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn every_enabled_region_is_searched_at_two_calls_per_second_through_bursts_and_failures() {
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.max_events_per_region = 100_000;
    a.config.investigation_budget = Duration::from_secs(300);
    let mut expected = HashMap::new();
    {
        let mut s = a.cloud.state.lock().unwrap();
        s.enabled_regions = Some(REGIONS.iter().map(|r| r.to_string()).collect());
        s.lookup_faults
            .insert("eu-west-2".into(), vec!["ThrottlingException".into(); 3]);
        s.lookup_faults.insert(
            "ap-south-1".into(),
            vec!["ThrottlingException".into(), "ThrottlingException".into()],
        );
        s.lookup_faults
            .insert("sa-east-1".into(), vec!["InternalFailure".into(); 5]);
    }
    for (i, region) in REGIONS.iter().enumerate() {
        let n = 37 * i + 3;
        seed(&a.cloud, region, n);
        expected.insert(region.to_string(), n);
    }
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let act = activity(&r);
    assert_eq!(act.regions.len(), 17);
    assert!(
        act.region_source
            .contains("every Region enabled for the account"),
        "{}",
        act.region_source
    );
    for region in &act.regions {
        if region.region == "sa-east-1" {
            assert!(
                matches!(&region.coverage, RegionCoverage::Failed { reason } if reason.contains("InternalFailure")),
                "{region:?}"
            );
            assert_eq!(region.calls_made, 3, "one call and two retries");
            continue;
        }
        assert_eq!(region.coverage, RegionCoverage::Complete, "{region:?}");
        assert_eq!(
            region.by_event.get("iam:DescribeInstances"),
            Some(&expected[&region.region]),
            "{}: per-Region counts",
            region.region
        );
        assert_eq!(
            region.source_ips.get("203.0.113.77"),
            Some(&expected[&region.region])
        );
        assert!(region.first_seen <= region.last_seen);
        assert_eq!(
            region.events, expected[&region.region],
            "{}: pages lost or repeated",
            region.region
        );
        assert_eq!(
            region.calls_made,
            expected[&region.region].div_ceil(50) + region.throttled,
            "{}",
            region.region
        );
    }
    assert_eq!(
        act.regions
            .iter()
            .find(|r| r.region == "eu-west-2")
            .unwrap()
            .throttled,
        3
    );
    assert_eq!(
        act.total_events,
        expected
            .iter()
            .filter(|(r, _)| *r != "sa-east-1")
            .map(|(_, n)| n)
            .sum::<usize>()
    );
    assert_paced(&a.cloud);
    let body = &a.cloud.published().last().cloned().unwrap().1;
    assert!(
        body.contains("sa-east-1") && body.contains("FAILED"),
        "{body}"
    );
    assert!(
        body.contains("INCOMPLETE") || body.contains("incomplete"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_region_that_keeps_throttling_is_given_up_after_backing_off() {
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.investigation_budget = Duration::from_secs(300);
    seed(&a.cloud, "us-east-1", 120);
    {
        let mut s = a.cloud.state.lock().unwrap();
        s.enabled_regions = Some(vec!["us-east-1".into()]);
        s.lookup_faults
            .insert("us-east-1".into(), vec!["ThrottlingException".into(); 20]);
    }
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let us = activity(&r)
        .regions
        .iter()
        .find(|r| r.region == "us-east-1")
        .unwrap()
        .clone();
    assert!(
        matches!(&us.coverage, RegionCoverage::Failed { reason } if reason.contains("Throttling")),
        "{us:?}"
    );
    assert_eq!(us.throttled, 8);
    assert_paced(&a.cloud);
    // Backing off: the gaps between attempts grow.
    let times: Vec<_> = a
        .cloud
        .state
        .lock()
        .unwrap()
        .lookups
        .iter()
        .filter(|(r, _)| r == "us-east-1")
        .map(|(_, t)| *t)
        .collect();
    assert!(times[5] - times[4] > times[1] - times[0]);
    // With a short budget the same Region is reported partial instead, never as "no activity".
    let b = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    {
        let mut s = b.cloud.state.lock().unwrap();
        s.enabled_regions = Some(vec!["us-east-1".into()]);
        s.lookup_faults
            .insert("us-east-1".into(), vec!["ThrottlingException".into(); 20]);
    }
    let r = report(&b, event("guardduty-iam-user-finding.json")).await;
    assert!(
        matches!(&activity(&r).regions[0].coverage, RegionCoverage::Partial { reason, .. } if reason.contains("time budget"))
    );
    assert!(
        b.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .1
            .contains("do not read this as no activity")
    );
}

#[tokio::test(start_paused = true)]
async fn region_discovery_failure_falls_back_to_the_hinted_regions_and_says_so() {
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let act = activity(&r);
    assert!(
        act.region_source
            .contains("the enabled Regions could not be listed"),
        "{}",
        act.region_source
    );
    let names: Vec<_> = act.regions.iter().map(|r| r.region.as_str()).collect();
    assert_eq!(
        names,
        ["us-east-1", "eu-west-1"],
        "home Region and the key's last-used Region"
    );
    assert!(
        a.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .1
            .contains("the enabled Regions could not be listed")
    );
}

#[tokio::test(start_paused = true)]
async fn configured_regions_replace_discovery() {
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.regions = vec!["ap-southeast-2".into()];
    a.cloud.state.lock().unwrap().enabled_regions =
        Some(REGIONS.iter().map(|r| r.to_string()).collect());
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let names: Vec<_> = activity(&r)
        .regions
        .iter()
        .map(|r| r.region.clone())
        .collect();
    assert_eq!(names, ["us-east-1", "eu-west-1", "ap-southeast-2"]);
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(c, _)| c == "account:ListRegions")
    );
}

fn fixture_call(name: &str, minutes_ago: i64) -> ApiCall {
    let path = format!(
        "{}/events/cloudtrail/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let record: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut call = ApiCall::from_record(&record).unwrap();
    call.time = Utc::now() - TimeDelta::minutes(minutes_ago);
    call
}

fn attacked_cloud() -> FakeCloud {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("alice", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    cloud.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    cloud.add_events(
        "us-east-1",
        vec![
            fixture_call("persistence-create-access-key", 30),
            fixture_call("minting-assume-role", 25),
            fixture_call("minting-assume-role-cross-account", 24),
            fixture_call("minting-get-session-token", 20),
            fixture_call("response-stop-logging", 10),
            fixture_call("benign-list-buckets", 40),
        ],
    );
    cloud
}

#[tokio::test(start_paused = true)]
async fn pivots_are_listed_with_a_ready_containment_request() {
    let a = app(attacked_cloud());
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let act = activity(&r);
    let kinds: Vec<_> = act
        .pivots
        .iter()
        .map(|p| {
            (
                p.pivot.kind,
                p.pivot.access_key_id.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (PivotKind::UserSession, "ASIAY34FZKBOKMUTVV7A"),
            (PivotKind::RoleSession, "ASIA4XMPLEKEY3333333"),
            (PivotKind::RoleSession, "ASIAQNKBOK6UEXAMPLE2"),
            (PivotKind::AccessKey, "AKIAI44QH8DHBEXAMPLE"),
        ]
    );
    let key_pivot = act
        .pivots
        .iter()
        .find(|p| p.pivot.kind == PivotKind::AccessKey)
        .unwrap();
    assert_eq!(
        key_pivot.contain_with["access_key_id"],
        "AKIAI44QH8DHBEXAMPLE"
    );
    assert_eq!(key_pivot.contain_with["user_name"], "alice");
    let role_pivot = act
        .pivots
        .iter()
        .find(|p| p.pivot.access_key_id.as_deref() == Some("ASIAQNKBOK6UEXAMPLE2"))
        .unwrap();
    assert_eq!(role_pivot.contain_with["role_name"], "ci-deployer");
    // The contain_with payload is a valid manual request.
    assert!(killswitch::trigger::parse(key_pivot.contain_with.clone()).is_ok());
    // Pivot keys were searched too.
    assert!(key_pivot.activity.is_some());
    // Not followed by default: the new key still works.
    assert_eq!(
        a.cloud.key_state("alice", "AKIAI44QH8DHBEXAMPLE"),
        Some(KeyStatus::Active)
    );
    let body = &a.cloud.published().last().cloned().unwrap().1;
    // What is still open leads the notice, attacks on the response first, each with the
    // command that closes it; the lists below do not repeat them.
    let open = body.find("STILL OPEN (4)").expect(body);
    let identity = body.find("Key:").expect(body);
    assert!(open < identity, "{body}");
    let stopped = body
        .find("aws cloudtrail start-logging --name")
        .expect(body);
    let minted = body
        .find("killswitch respond --access-key-id AKIAI44QH8DHBEXAMPLE --reason")
        .expect(body);
    assert!(stopped < minted && minted < identity, "{body}");
    assert!(
        body.contains("aws iam update-access-key --user-name alice --access-key-id AKIAI44QH8DHBEXAMPLE --status Inactive"),
        "{body}"
    );
    assert!(
        body.contains("3 NOT contained: listed under STILL OPEN above"),
        "{body}"
    );
    assert_eq!(
        body.matches("newAccessKeyId=AKIAI44QH8DHBEXAMPLE").count(),
        0,
        "{body}"
    );
    assert!(body.contains("cloudtrail:StopLogging"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn follow_pivots_contains_the_minted_key_and_role_session_under_the_same_guards() {
    let mut a = app(attacked_cloud());
    a.config.follow_pivots = true;
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(r.status, Status::Contained, "{:?}", r.summary);
    assert_eq!(
        a.cloud.key_state("alice", "AKIAI44QH8DHBEXAMPLE"),
        Some(KeyStatus::Inactive)
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_some()
    );
    let act = activity(&r);
    let contained: Vec<_> = act
        .pivots
        .iter()
        .filter_map(|p| {
            p.containment.as_ref().map(|c| {
                (
                    p.pivot.access_key_id.as_deref().unwrap_or_default(),
                    c.status,
                )
            })
        })
        .collect();
    assert_eq!(
        contained,
        [
            ("ASIAQNKBOK6UEXAMPLE2", Status::Contained),
            ("AKIAI44QH8DHBEXAMPLE", Status::Contained)
        ]
    );
    // The role in another account is listed for a human, never touched.
    assert!(act.pivots.iter().any(|p| p.pivot.access_key_id.as_deref()
        == Some("ASIA4XMPLEKEY3333333")
        && p.containment.is_none()));

    // The same protections: a protected role is refused, dry run writes nothing.
    let mut b = app(attacked_cloud());
    b.config.follow_pivots = true;
    b.config.protected = vec!["ci-deployer".into()];
    b.config.dry_run = true;
    let r = report(&b, event("guardduty-iam-user-finding.json")).await;
    let statuses: Vec<_> = activity(&r)
        .pivots
        .iter()
        .filter_map(|p| p.containment.as_ref().map(|c| c.status))
        .collect();
    assert_eq!(statuses, [Status::Refused, Status::DryRun]);
    assert!(b.cloud.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn two_investigations_at_once_share_the_budget_with_no_throttle_and_one_alone_runs_near_the_ceiling()
 {
    // Two invocations (two apps, one account, one incident store) investigating two keys at
    // once, with a realistic round trip on every call.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", "AKIA4XMPLEBOBKEY0001", KeyStatus::Active);
    cloud.state.lock().unwrap().latency = Some(Duration::from_millis(30));
    cloud.state.lock().unwrap().enabled_regions =
        Some(vec!["us-east-1".into(), "eu-west-1".into()]);
    let now = Utc::now();
    for region in ["us-east-1", "eu-west-1"] {
        for key in [FIXTURE_KEY, "AKIA4XMPLEBOBKEY0001"] {
            cloud.add_events(
                region,
                (0..400)
                    .map(|i| {
                        let mut c =
                            api_call("DescribeInstances", now - TimeDelta::seconds(i + 1), None);
                        c.region = region.into();
                        c.event_id = Some(format!("{key}-{region}-{i}"));
                        c
                    })
                    .collect(),
            );
        }
    }
    let shared = |c: FakeCloud| {
        let mut a = app(c);
        a.config.incident_table = Some("killswitch-incidents".into());
        a.config.max_events_per_region = 100_000;
        a.config.investigation_budget = Duration::from_secs(300);
        a
    };
    let (one, two) = (shared(cloud.clone()), shared(cloud.clone()));
    let mut bob = event("manual-request.json");
    bob["access_key_id"] = "AKIA4XMPLEBOBKEY0001".into();
    bob["user_name"] = "bob".into();
    let (r1, r2) = tokio::join!(
        report(&one, event("guardduty-iam-user-finding.json")),
        report(&two, bob)
    );
    for r in [&r1, &r2] {
        let act = activity(r);
        assert!(act.complete(), "{:?}", act.regions);
        assert!(
            act.regions.iter().all(|r| r.throttled == 0),
            "{:?}",
            act.regions
        );
    }
    assert_paced(&cloud);
    assert!(
        cloud.state.lock().unwrap().slots.len() >= 2 * 2 * 8,
        "the slots were shared through the store"
    );
    // Together they use the whole budget: ~2 calls/s in each Region, split between them.
    let together = rate(&cloud, "us-east-1");
    assert!(together >= 1.8, "{together} calls/s shared");

    // Alone, one investigation takes every slot: at least 90 % of 2 calls/s.
    let alone = FakeCloud::with_user("alice", FIXTURE_KEY);
    alone.state.lock().unwrap().latency = Some(Duration::from_millis(30));
    alone.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    seed(&alone, "us-east-1", 1000);
    let a = shared(alone.clone());
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(activity(&r).total_events, 1000);
    assert_paced(&alone);
    let solo = rate(&alone, "us-east-1");
    assert!(solo >= 1.8, "{solo} calls/s alone");
}

#[tokio::test(start_paused = true)]
async fn without_the_shared_store_the_budget_is_kept_within_the_invocation() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    seed(&cloud, "us-east-1", 600);
    let mut a = app(cloud.clone());
    a.config.max_events_per_region = 100_000;
    a.config.investigation_budget = Duration::from_secs(300);
    // The store is configured but failing: pacing goes on within the invocation.
    a.config.incident_table = Some("killswitch-incidents".into());
    cloud.fail("dynamodb:PutItem(slot)", "InternalServerError");
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(activity(&r).total_events, 600);
    assert_paced(&cloud);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_session_tokens_newer_than_a_backdoor_key_never_keeps_it_from_containment() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("alice", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    cloud.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    let mut calls = vec![fixture_call("persistence-create-access-key", 30)];
    for i in 0..25 {
        let mut token = fixture_call("minting-get-session-token", 29 - i64::from(i));
        token.event_id = Some(format!("token-{i}"));
        token.response_elements = Some(serde_json::json!({
            "credentials": {"accessKeyId": format!("ASIA4XMPLESESSION{i:03}")}
        }));
        calls.push(token);
    }
    cloud.add_events("us-east-1", calls);
    let mut a = app(cloud);
    a.config.follow_pivots = true;
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(
        a.cloud.key_state("alice", "AKIAI44QH8DHBEXAMPLE"),
        Some(KeyStatus::Inactive),
        "the backdoor key was crowded out"
    );
    let act = activity(&r);
    assert_eq!(act.covered_pivots, 25);
    let body = &a.cloud.published().last().cloned().unwrap().1;
    assert!(body.contains("25 session token(s)"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_console_password_set_on_another_user_is_removed_and_a_trust_change_only_reported() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    cloud
        .state
        .lock()
        .unwrap()
        .login_profiles
        .insert("admin-jane".into(), Utc::now());
    cloud.add_events(
        "us-east-1",
        vec![
            fixture_call("persistence-update-login-profile", 12),
            fixture_call("persistence-update-assume-role-policy", 11),
        ],
    );
    let mut a = app(cloud);
    a.config.follow_pivots = true;
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    assert!(
        !a.cloud
            .state
            .lock()
            .unwrap()
            .login_profiles
            .contains_key("admin-jane"),
        "the attacker's password stays"
    );
    let act = activity(&r);
    let password = act
        .pivots
        .iter()
        .find(|p| p.pivot.kind == PivotKind::LoginProfile)
        .unwrap();
    assert_eq!(
        password.containment.as_ref().unwrap().status,
        Status::Contained
    );
    let trust = act
        .pivots
        .iter()
        .find(|p| p.pivot.kind == PivotKind::TrustPolicy)
        .unwrap();
    assert!(trust.containment.is_none(), "never reverted automatically");
    assert!(
        a.cloud
            .calls()
            .iter()
            .all(|(c, _)| c != "iam:UpdateAssumeRolePolicy")
    );
    let body = &a.cloud.published().last().cloned().unwrap().1;
    assert!(
        body.contains("trust policy of role ci-deployer changed"),
        "{body}"
    );
    assert!(body.contains("review and put it back"), "{body}");
    assert!(
        body.contains("aws iam update-assume-role-policy --role-name ci-deployer"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_assumed_into_an_allowed_member_account_is_searched_and_contained_there() {
    const MEMBER: &str = "111122223333";
    let home = FakeCloud::with_user("alice", FIXTURE_KEY);
    home.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    let mut hop = fixture_call("minting-assume-role-cross-account", 5);
    let arn = format!("arn:aws:iam::{MEMBER}:role/deploy");
    hop.request_parameters =
        Some(serde_json::json!({"roleArn": arn, "roleSessionName": "mallory"}));
    home.add_events("us-east-1", vec![hop]);
    let member = home.add_member(MEMBER, "ext-id-1");
    member
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("deploy".into(), "AROA4XMPLEDEPLOYROLE".into());
    let minted = "ASIA4XMPLEKEY3333333";
    member.add_events(
        "us-east-1",
        vec![{
            let mut c = api_call("ListBuckets", Utc::now() - TimeDelta::minutes(4), None);
            c.event_source = "s3.amazonaws.com".into();
            c
        }],
    );
    let mut a = app(home);
    a.config.follow_pivots = true;
    a.config.members = Some(killswitch::config::Members {
        role_name: "KillSwitchMember".into(),
        external_id: "ext-id-1".into(),
        accounts: vec![killswitch::incident::AccountId::parse(MEMBER).unwrap()],
    });
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let pivot = activity(&r)
        .pivots
        .iter()
        .find(|p| p.pivot.access_key_id.as_deref() == Some(minted))
        .unwrap()
        .clone();
    let c = pivot.containment.expect("followed into the member account");
    assert!(c.status.is_contained(), "{c:?}");
    assert!(
        member
            .calls()
            .iter()
            .any(|(c, arg)| c == "iam:PutRolePolicy" && arg.contains("deploy")),
        "{:?}",
        member.calls()
    );
    assert!(
        member
            .calls()
            .iter()
            .any(|(c, arg)| c == "cloudtrail:LookupEvents" && arg == "us-east-1"),
        "searched there"
    );
    assert!(pivot.activity.is_some());
}

#[tokio::test(start_paused = true)]
async fn many_sessions_of_one_role_get_one_role_wide_cutoff_not_racing_session_writes() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), "AROAEXAMPLEROLEID0001".into());
    let hops: Vec<ApiCall> = (0..12)
        .map(|i| {
            let mut c = fixture_call("minting-assume-role", 20 - i);
            c.event_id = Some(format!("hop-{i}"));
            c.request_parameters = Some(serde_json::json!({
                "roleArn": "arn:aws:iam::123456789012:role/ci-deployer",
                "roleSessionName": format!("s{i}")}));
            c.response_elements = Some(serde_json::json!({
                "credentials": {"accessKeyId": format!("ASIA4XMPLEHOPKEY{i:04}")}}));
            c
        })
        .collect();
    cloud.add_events("us-east-1", hops);
    let mut a = app(cloud);
    a.config.follow_pivots = true;
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let act = activity(&r);
    let sessions: Vec<_> = act
        .pivots
        .iter()
        .filter(|p| p.pivot.kind == PivotKind::RoleSession)
        .collect();
    assert_eq!(sessions.len(), 12);
    assert!(
        sessions.iter().all(|p| p
            .containment
            .as_ref()
            .is_some_and(|c| c.status.is_contained())),
        "{sessions:?}"
    );
    let role_writes: Vec<_> = a
        .cloud
        .writes()
        .into_iter()
        .filter(|(c, arg)| c == "iam:PutRolePolicy" && arg.contains("ci-deployer"))
        .collect();
    assert_eq!(
        role_writes.len(),
        1,
        "one cutoff for the role: {role_writes:?}"
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_some()
    );
    // The notice stays readable: what needs a human is not cut off by a long list.
    let body = &a.cloud.published().last().cloned().unwrap().1;
    assert!(body.contains("Still for a human"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_key_made_with_a_pivot_session_is_a_pivot_too() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", "AKIA4XMPLESECONDHOP1", KeyStatus::Active);
    cloud.state.lock().unwrap().enabled_regions = Some(vec!["us-east-1".into()]);
    cloud.add_events("us-east-1", vec![fixture_call("minting-assume-role", 10)]);
    // What the role session did: a key for bob.
    let mut second = fixture_call("persistence-create-access-key", 8);
    second.request_parameters = Some(serde_json::json!({"userName": "bob"}));
    second.response_elements = Some(serde_json::json!({"accessKey": {
        "accessKeyId": "AKIA4XMPLESECONDHOP1", "userName": "bob", "status": "Active"}}));
    cloud.state.lock().unwrap().key_events.insert(
        ("ASIAQNKBOK6UEXAMPLE2".into(), "us-east-1".into()),
        vec![second],
    );
    let mut a = app(cloud);
    a.config.follow_pivots = true;
    let r = report(&a, event("guardduty-iam-user-finding.json")).await;
    let hop = activity(&r)
        .pivots
        .iter()
        .find(|p| p.pivot.access_key_id.as_deref() == Some("AKIA4XMPLESECONDHOP1"))
        .expect("the second hop is listed")
        .clone();
    assert!(
        hop.pivot.via.contains("by pivot ASIAQNKBOK6UEXAMPLE2"),
        "{}",
        hop.pivot.via
    );
    assert_eq!(
        a.cloud.key_state("bob", "AKIA4XMPLESECONDHOP1"),
        Some(KeyStatus::Inactive)
    );
}

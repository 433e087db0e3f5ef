//! The local AWS's model of IAM's propagation window (issue 27): authorization on state `D`
//! seconds old while reads are current, SCPs enforced on the member account with the same lag,
//! and the `AWS API Call via CloudTrail` events it emits.

use std::time::{Duration, Instant};

use aws_sdk_iam::error::ProvideErrorMetadata;

use super::super::*;

/// Slack for a 2-core machine running other tests at once.
const TOLERANCE: Duration = Duration::from_secs(1);

/// D, from the env file the local AWS wrote; this module runs only in the lagged pass.
fn lag() -> Duration {
    let said: f64 = std::env::var("KILLSWITCH_LOCAL_IAM_LAG_SECONDS")
        .unwrap_or_else(|_| panic!("KILLSWITCH_LOCAL_IAM_LAG_SECONDS is not set: {NEEDS}"))
        .parse()
        .unwrap();
    assert!(
        said > 0.0,
        "e2e::lagged runs only against a lagged local AWS (KILLSWITCH_IAM_LAG_SECONDS=4 scripts/local-aws.sh run -- ...)"
    );
    assert_eq!(control_get("/_killswitch/iam/lag")["seconds"], json!(said));
    Duration::from_secs_f64(said)
}

async fn admin_iam() -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk(&admin()).await)
}

/// A user allowed everything, with a key that already authenticates (a new key waits out D).
async fn ready_user(prefix: &str) -> (String, Key) {
    let name = unique(prefix);
    let key = create_user_with_key(&name, &["*"]).await;
    let deadline = Instant::now() + lag() + Duration::from_secs(5);
    while attacker_call(&key).await != "ok" {
        assert!(Instant::now() < deadline, "{name}'s new key never worked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (name, key)
}

/// Polls `key`'s ListUsers every 200 ms from `t0` until its answer stops being `before`, for at
/// most D + 5 s: (seconds after `t0` of the last `before`, of the first other answer, that answer).
async fn until_changed(key: &Key, t0: Instant, before: &str) -> (f64, f64, String) {
    let mut last_before = 0.0;
    while t0.elapsed() < lag() + Duration::from_secs(5) {
        let asked = t0.elapsed().as_secs_f64();
        let got = attacker_call(key).await;
        if got != before {
            return (last_before, asked, got);
        }
        last_before = asked;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("still {before} {:?} after the write", t0.elapsed());
}

/// The change reached authorization about D after the write, not before and not much later.
fn after_the_window(timing: (f64, f64, String), want: &str) {
    let (last_before, first_after, got) = timing;
    let d = lag().as_secs_f64();
    let slack = TOLERANCE.as_secs_f64();
    assert!(got.starts_with(want), "answer after the window: {got}");
    assert!(
        last_before >= d - slack,
        "only {last_before:.1} s of the old state (D = {d})"
    );
    assert!(
        first_after <= d + slack,
        "the write took {first_after:.1} s to apply (D = {d})"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_deny_applies_after_the_window_while_reads_show_it_at_once() {
    let (user, key) = ready_user("lag-deny").await;
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]});
    let iam = admin_iam().await;
    iam.put_user_policy()
        .user_name(&user)
        .policy_name("deny")
        .policy_document(deny.to_string())
        .send()
        .await
        .unwrap();
    let t0 = Instant::now();
    let names = iam
        .list_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert!(names.policy_names().iter().any(|n| n == "deny"));
    after_the_window(until_changed(&key, t0, "ok").await, "AccessDenied");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_deactivated_key_authenticates_until_the_window_ends() {
    let (user, key) = ready_user("lag-off").await;
    let iam = admin_iam().await;
    iam.update_access_key()
        .user_name(&user)
        .access_key_id(&key.id)
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let t0 = Instant::now();
    let listed = iam
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.access_key_metadata()[0].status(),
        Some(&StatusType::Inactive)
    );
    after_the_window(until_changed(&key, t0, "ok").await, "InvalidClientTokenId");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_new_key_is_refused_until_the_window_ends() {
    let name = unique("lag-new");
    let key = create_user_with_key(&name, &["*"]).await;
    let t0 = Instant::now();
    after_the_window(until_changed(&key, t0, "InvalidClientTokenId").await, "ok");
}

/// The Organizations client of the management account, and the root's ID.
async fn organization() -> (aws_sdk_organizations::Client, String) {
    let (_, management) = member_admin();
    let root = std::env::var("KILLSWITCH_LOCAL_ORGANIZATION_ROOT_ID")
        .unwrap_or_else(|_| panic!("{NEEDS}"));
    (
        aws_sdk_organizations::Client::new(&sdk(&management).await),
        root,
    )
}

/// A guard like org-guard.yaml's, on a tag key of its own (tests run at once): deny everything
/// to a principal carrying `tag`, deny tagging or untagging `tag` to all but `exempt`, and a
/// statement on `tripwire`'s GetUser with an operator the local AWS does not evaluate.
fn guard(tag: &str, exempt: &str, tripwire: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Contained", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"Null": {format!("aws:PrincipalTag/{tag}"): "false"}}},
        {"Sid": "TagKeys", "Effect": "Deny", "Action": ["iam:TagUser", "iam:UntagUser"], "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": [tag]},
                       "ArnNotLike": {"aws:PrincipalArn": exempt}}},
        {"Sid": "Tripwire", "Effect": "Deny", "Action": "iam:GetUser",
         "Resource": format!("arn:aws:iam::*:user/{tripwire}"),
         "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}]})
}

/// The guard attached to the organization's root (the member account's own 5 SCP slots are
/// killswitch's quarantine's), in force once D has passed: its ID.
async fn guard_in_force(tag: &str, exempt: &str, tripwire: &str) -> String {
    use aws_sdk_organizations::types::PolicyType;
    let (org, root) = organization().await;
    let id = org
        .create_policy()
        .name(tag)
        .description("e2e::lagged::model guard")
        .r#type(PolicyType::ServiceControlPolicy)
        .content(guard(tag, exempt, tripwire).to_string())
        .send()
        .await
        .unwrap()
        .policy()
        .and_then(|p| p.policy_summary())
        .and_then(|s| s.id())
        .unwrap()
        .to_owned();
    org.attach_policy()
        .policy_id(&id)
        .target_id(&root)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(lag() + TOLERANCE).await;
    id
}

async fn guard_removed(id: &str) {
    let (org, root) = organization().await;
    org.detach_policy()
        .policy_id(id)
        .target_id(&root)
        .send()
        .await
        .unwrap();
    org.delete_policy().policy_id(id).send().await.unwrap();
}

/// (code, message) of a refused IAM call, or ("ok", "").
fn outcome<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> (String, String) {
    match r {
        Ok(_) => ("ok".into(), String::new()),
        Err(e) => (
            e.code().unwrap_or("?").to_owned(),
            e.message().unwrap_or("").to_owned(),
        ),
    }
}

async fn tag_user(iam: &aws_sdk_iam::Client, user: &str, key: &str) -> (String, String) {
    let tag = aws_sdk_iam::types::Tag::builder()
        .key(key)
        .value("incident")
        .build()
        .unwrap();
    outcome(iam.tag_user().user_name(user).tags(tag).send().await)
}

async fn untag_user(iam: &aws_sdk_iam::Client, user: &str, key: &str) -> (String, String) {
    outcome(iam.untag_user().user_name(user).tag_keys(key).send().await)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn an_scp_guard_binds_member_principals_with_the_window_and_never_the_management_account() {
    let tag = unique("ks-guard");
    let tripwire = unique("lag-tripwire");
    let admin_arn = aws_sdk_sts::Client::new(&sdk(&admin()).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let id = guard_in_force(&tag, &admin_arn, &tripwire).await;
    let (holder, key) = ready_user("lag-holder").await;
    let (other, other_key) = ready_user("lag-other").await;
    let as_holder = aws_sdk_iam::Client::new(&sdk(&key).await);
    let as_other = aws_sdk_iam::Client::new(&sdk(&other_key).await);
    let iam = admin_iam().await;

    // The guard was in force before: its tag key is refused at once, other keys are not.
    let (code, message) = tag_user(&as_holder, &holder, &tag).await;
    assert_eq!(code, "AccessDenied", "{message}");
    assert!(
        message.ends_with("with an explicit deny in a service control policy"),
        "{message}"
    );
    assert_eq!(tag_user(&as_holder, &other, "harmless").await.0, "ok");

    // Exempt, the responder tags the holder: principal tags propagate like the rest.
    assert_eq!(tag_user(&iam, &holder, &tag).await.0, "ok");
    let t0 = Instant::now();
    after_the_window(until_changed(&key, t0, "ok").await, "AccessDenied");
    // Nobody else may lift the tag, however fresh their rights.
    assert_eq!(untag_user(&as_other, &holder, &tag).await.0, "AccessDenied");
    assert_eq!(untag_user(&as_other, &other, "harmless").await.0, "ok");
    assert_eq!(
        attacker_call(&other_key).await,
        "ok",
        "an untagged principal was denied"
    );

    management_account_is_never_restricted(&tag).await;
    // An operator the evaluator does not know fails loudly, never allows.
    let refused = iam
        .get_user()
        .user_name(&tripwire)
        .send()
        .await
        .unwrap_err();
    let status = refused.raw_response().map(|r| r.status().as_u16());
    let (code, message) = outcome::<(), _>(Err(refused));
    assert_eq!(status, Some(500), "{code}: {message}");
    assert!(message.contains("IpAddress"), "{message}");
    guard_removed(&id).await;
}

/// The management account's admin carries the guard's tag and still acts; it may tag and
/// untag with the guard's key (SCPs never apply to the management account).
async fn management_account_is_never_restricted(tag: &str) {
    let (_, management) = member_admin();
    let iam = aws_sdk_iam::Client::new(&sdk(&management).await);
    let me = aws_sdk_sts::Client::new(&sdk(&management).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(tag_user(&iam, &me, tag).await.0, "ok");
    tokio::time::sleep(lag() + TOLERANCE).await;
    assert_eq!(outcome(iam.list_users().send().await).0, "ok");
    assert_eq!(untag_user(&iam, &me, tag).await.0, "ok");
}

/// The events delivered after `after`: (seq, envelope).
fn events_after(after: u64) -> Vec<(u64, Value)> {
    control_get(&format!("/_killswitch/eventbridge/events?after={after}"))["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["event"].clone()))
        .collect()
}

fn last_seq() -> u64 {
    events_after(0).last().map_or(0, |(seq, _)| *seq)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn an_iam_write_emits_one_event_after_the_delay_and_a_failed_call_none() {
    let delay = control_get("/_killswitch/eventbridge/delay")["seconds"]
        .as_f64()
        .unwrap();
    let (user, _) = ready_user("lag-events").await;
    let (_, weak) = ready_user("lag-weak").await;
    let start = last_seq();
    let new = admin_iam()
        .await
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let t0 = Instant::now();
    // A refused call (the weak user is denied this one) emits nothing.
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"}]});
    admin_iam()
        .await
        .put_user_policy()
        .user_name(user_name_of(&weak).await)
        .policy_name("no-create")
        .policy_document(deny.to_string())
        .send()
        .await
        .unwrap();
    let mine = |events: &[(u64, Value)]| -> Vec<Value> {
        events
            .iter()
            .filter(|(_, e)| e.to_string().contains(&new.access_key_id))
            .map(|(_, e)| e.clone())
            .collect()
    };
    while mine(&events_after(start)).is_empty() {
        assert!(
            t0.elapsed().as_secs_f64() < delay + 2.0,
            "no event for CreateAccessKey"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = t0.elapsed().as_secs_f64();
    assert!(
        seen >= delay - 0.5,
        "delivered after {seen:.1} s, the delay is {delay} s"
    );
    let events = mine(&events_after(start));
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(e["source"], "aws.iam");
    assert_eq!(e["region"], "us-east-1");
    assert_eq!(e["detail"]["eventName"], "CreateAccessKey");
    assert_eq!(
        e["detail"]["responseElements"]["accessKey"]["userName"],
        user.as_str()
    );
    assert_eq!(e["detail"]["readOnly"], false);
    assert!(
        !e.to_string().contains(&new.secret_access_key),
        "the secret is in the event"
    );
    failed_call_emits_nothing(&weak, delay).await;
}

async fn user_name_of(key: &Key) -> String {
    aws_sdk_sts::Client::new(&sdk(key).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// `weak`'s refused CreateUser (once its deny is in force) shows in no event.
async fn failed_call_emits_nothing(weak: &Key, delay: f64) {
    tokio::time::sleep(lag() + TOLERANCE).await;
    let start = last_seq();
    let name = unique("lag-never");
    let iam = aws_sdk_iam::Client::new(&sdk(weak).await);
    let refused = iam.create_user().user_name(&name).send().await;
    assert_eq!(outcome(refused).0, "AccessDenied");
    tokio::time::sleep(Duration::from_secs_f64(delay + 1.5)).await;
    let leaked: Vec<_> = events_after(start)
        .into_iter()
        .filter(|(_, e)| e.to_string().contains(&name) || e.to_string().contains(&weak.id))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

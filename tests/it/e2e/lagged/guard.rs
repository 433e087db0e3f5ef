//! The org guard (org-guard.yaml, `killswitch::policy::guard`) on the local AWS's SCP
//! enforcement, with authorization lagging IAM writes by D seconds: the contained user's key is
//! refused once the tag has propagated, even after the holder lifted the deny and reactivated the
//! key inside the window; no one but killswitch's roles can then untag it or edit it; a tag-free
//! user and a guarded role's sessions keep working.
//!
//! Each test runs in an account of its own, created in the local organization for it, so the
//! guard (which spares only this test's roles) never meets another test's responder; the guard
//! is detached and deleted at the end, whatever the outcome.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::Tag;
use futures::FutureExt;
use killswitch::policy::guard::{self, CONTAINED_TAG_KEY, Exempt, GUARDED_TAG_KEY};

use super::super::*;

/// D, as the local AWS was started with it; these tests mean nothing without a window.
fn lag() -> Duration {
    let seconds = control_get("/_killswitch/iam/lag")["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("the local AWS does not report its IAM lag: {NEEDS}"));
    assert!(
        seconds >= 2.0,
        "run with KILLSWITCH_IAM_LAG_SECONDS=4 (scripts/test.sh does): D = {seconds}"
    );
    Duration::from_secs_f64(seconds)
}

/// Until a write is in force everywhere (D, and a second for this 2-core machine).
async fn settle() {
    tokio::time::sleep(lag() + Duration::from_secs(1)).await;
}

/// "ok", or the error code and whether an SCP said it.
fn outcome<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => {
            let by_scp = e
                .message()
                .is_some_and(|m| m.contains("service control policy"));
            format!(
                "{}{}",
                e.code().unwrap_or("unknown"),
                if by_scp { " (SCP)" } else { "" }
            )
        }
    }
}

const DENIED_BY_SCP: &str = "AccessDenied (SCP)";

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

/// A fresh member account with killswitch's three roles (all `Allow *`, assumable from the
/// management account), the guard attached to it, and in force.
struct Guarded {
    account: String,
    management: Key,
    /// The account's own admin (OrganizationAccountAccessRole): the holder's other credential.
    owner: Key,
    responder: Key,
    policy_id: String,
}

impl Guarded {
    async fn new() -> Guarded {
        let (_, management) = member_admin();
        let org = aws_sdk_organizations::Client::new(&sdk(&management).await);
        let name = unique("guarded");
        let created = org
            .create_account()
            .email(format!("{name}@example.com"))
            .account_name(&name)
            .send()
            .await
            .unwrap();
        let account = created
            .create_account_status()
            .and_then(|s| s.account_id())
            .unwrap()
            .to_owned();
        settle().await;
        let owner = assume(
            &management,
            &format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"),
            "owner",
            None,
        )
        .await
        .unwrap();
        let exempt = Exempt::parse(
            &unique("ks-responder"),
            &unique("KsMember"),
            &unique("ks-restore"),
            None,
        )
        .unwrap();
        let owner_iam = aws_sdk_iam::Client::new(&sdk(&owner).await);
        for role in [&exempt.responder, &exempt.member, &exempt.restore] {
            admin_role(&owner_iam, role).await;
        }
        let policy_id = org
            .create_policy()
            .name(unique("killswitch-org-guard"))
            .description("killswitch org guard (test)")
            .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .content(guard::document(&exempt, "aws"))
            .send()
            .await
            .unwrap()
            .policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .unwrap()
            .to_owned();
        org.attach_policy()
            .policy_id(&policy_id)
            .target_id(&account)
            .send()
            .await
            .unwrap();
        settle().await;
        let responder = assume(
            &management,
            &format!("arn:aws:iam::{account}:role/{}", exempt.responder),
            "killswitch",
            None,
        )
        .await
        .unwrap();
        Guarded {
            account,
            management,
            owner,
            responder,
            policy_id,
        }
    }

    async fn iam(key: &Key) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&sdk(key).await)
    }

    /// A user of this account with `Allow *` and one access key.
    async fn user(&self, name: &str) -> Key {
        let iam = Self::iam(&self.owner).await;
        iam.create_user().user_name(name).send().await.unwrap();
        let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        iam.put_user_policy()
            .user_name(name)
            .policy_name("work")
            .policy_document(allow.to_string())
            .send()
            .await
            .unwrap();
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        Key {
            id: key.access_key_id,
            secret: key.secret_access_key,
            token: None,
        }
    }

    /// Detaches and deletes the guard (other tests share the organization's quota of 5 SCPs).
    async fn lift(&self) {
        let org = aws_sdk_organizations::Client::new(&sdk(&self.management).await);
        let detached = org
            .detach_policy()
            .policy_id(&self.policy_id)
            .target_id(&self.account)
            .send()
            .await;
        let deleted = org.delete_policy().policy_id(&self.policy_id).send().await;
        assert!(
            detached.is_ok() && deleted.is_ok(),
            "the guard {} stays on {}: {detached:?} {deleted:?}",
            self.policy_id,
            self.account
        );
    }
}

/// A role assumable from the management account, allowed everything.
async fn admin_role(iam: &aws_sdk_iam::Client, name: &str) {
    let (management_account, _) = member_admin();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{management_account}:root")},
        "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name(name)
        .policy_name("work")
        .policy_document(allow.to_string())
        .send()
        .await
        .unwrap();
}

/// Runs `scenario` in a guarded account, then lifts the guard whatever happened.
async fn in_guarded_account<F>(scenario: impl FnOnce(&'static Guarded) -> F)
where
    F: std::future::Future<Output = ()>,
{
    let g: &'static Guarded = Box::leak(Box::new(Guarded::new().await));
    let result = AssertUnwindSafe(scenario(g)).catch_unwind().await;
    g.lift().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The holder's own call with `key`: "ok" or why not.
async fn holder_call(key: &Key) -> String {
    outcome(
        aws_sdk_iam::Client::new(&sdk(key).await)
            .list_users()
            .send()
            .await,
    )
}

/// Containment's wave, as the responder: the tag, the inline deny, the key Inactive.
async fn contain(g: &Guarded, user: &str, key: &Key) {
    let iam = Guarded::iam(&g.responder).await;
    let wave = (
        iam.tag_user()
            .user_name(user)
            .tags(tag(CONTAINED_TAG_KEY, "inc-guard"))
            .send(),
        iam.put_user_policy()
            .user_name(user)
            .policy_name(policy::USER_POLICY_NAME)
            .policy_document(policy::deny_all())
            .send(),
        iam.update_access_key()
            .user_name(user)
            .access_key_id(&key.id)
            .status(StatusType::Inactive)
            .send(),
    );
    let (tagged, denied, deactivated) = tokio::join!(wave.0, wave.1, wave.2);
    assert_eq!(
        [outcome(tagged), outcome(denied), outcome(deactivated)],
        ["ok", "ok", "ok"]
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_guard_refuses_a_contained_key_after_d_even_when_the_holder_undid_everything() {
    in_guarded_account(|g| async move {
        let user = unique("leaky");
        let leaked = g.user(&user).await;
        let bystander = g.user(&unique("bystander")).await;
        settle().await;
        assert_eq!(holder_call(&leaked).await, "ok");

        let t0 = Instant::now();
        contain(g, &user, &leaked).await;
        // The holder's other admin, inside the window: the deny gone, the key back, a new key.
        let owner = Guarded::iam(&g.owner).await;
        let undone = [
            outcome(
                owner
                    .delete_user_policy()
                    .user_name(&user)
                    .policy_name(policy::USER_POLICY_NAME)
                    .send()
                    .await,
            ),
            outcome(
                owner
                    .update_access_key()
                    .user_name(&user)
                    .access_key_id(&leaked.id)
                    .status(StatusType::Active)
                    .send()
                    .await,
            ),
        ];
        assert_eq!(
            undone,
            ["ok", "ok"],
            "inside the window IAM lets the holder undo it"
        );
        let minted = owner
            .create_access_key()
            .user_name(&user)
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        let minted = Key {
            id: minted.access_key_id,
            secret: minted.secret_access_key,
            token: None,
        };

        // From D on, every call of the user's keys is refused, by the guard.
        let d = lag();
        let mut last_ok = None;
        while t0.elapsed() < d + Duration::from_secs(4) {
            if holder_call(&leaked).await == "ok" {
                last_ok = Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            last_ok.is_none_or(|t| t <= d + Duration::from_secs(2)),
            "the leaked key still worked {last_ok:?} after the tag (D = {d:?})"
        );
        assert_eq!(holder_call(&leaked).await, DENIED_BY_SCP);
        assert_eq!(holder_call(&minted).await, DENIED_BY_SCP);

        // What IAM shows: the key Active and no deny. Only the guard stands.
        let keys = owner
            .list_access_keys()
            .user_name(&user)
            .send()
            .await
            .unwrap();
        assert!(keys.access_key_metadata().iter().any(|k| {
            k.access_key_id() == Some(leaked.id.as_str()) && k.status() == Some(&StatusType::Active)
        }));
        let policies = owner
            .list_user_policies()
            .user_name(&user)
            .send()
            .await
            .unwrap();
        assert!(
            !policies
                .policy_names()
                .iter()
                .any(|p| p == policy::USER_POLICY_NAME)
        );
        // A tag-free user of the same account is unaffected.
        assert_eq!(holder_call(&bystander).await, "ok");
    })
    .await;
}

/// Every write the holder's other admin tries on the contained user, once the tag is in force.
async fn others_are_refused(g: &Guarded, user: &str, leaked: &Key, bystander: &str) {
    let owner = Guarded::iam(&g.owner).await;
    let tries = [
        (
            "untag",
            outcome(
                owner
                    .untag_user()
                    .user_name(user)
                    .tag_keys(CONTAINED_TAG_KEY)
                    .send()
                    .await,
            ),
        ),
        (
            "untag, another case",
            outcome(
                owner
                    .untag_user()
                    .user_name(user)
                    .tag_keys("KILLSWITCH-CONTAINED")
                    .send()
                    .await,
            ),
        ),
        (
            "retag",
            outcome(
                owner
                    .tag_user()
                    .user_name(user)
                    .tags(tag(CONTAINED_TAG_KEY, "x"))
                    .send()
                    .await,
            ),
        ),
        (
            "delete the deny",
            outcome(
                owner
                    .delete_user_policy()
                    .user_name(user)
                    .policy_name(policy::USER_POLICY_NAME)
                    .send()
                    .await,
            ),
        ),
        (
            "reactivate",
            outcome(
                owner
                    .update_access_key()
                    .user_name(user)
                    .access_key_id(&leaked.id)
                    .status(StatusType::Active)
                    .send()
                    .await,
            ),
        ),
        (
            "new key",
            outcome(owner.create_access_key().user_name(user).send().await),
        ),
        (
            "console password",
            outcome(
                owner
                    .create_login_profile()
                    .user_name(user)
                    .password("Guard-Test-9x!")
                    .send()
                    .await,
            ),
        ),
        (
            "delete the user",
            outcome(owner.delete_user().user_name(user).send().await),
        ),
        (
            "frame a bystander",
            outcome(
                owner
                    .tag_user()
                    .user_name(bystander)
                    .tags(tag(CONTAINED_TAG_KEY, "x"))
                    .send()
                    .await,
            ),
        ),
        (
            "a new user born tagged",
            outcome(
                owner
                    .create_user()
                    .user_name(unique("framed"))
                    .tags(tag(GUARDED_TAG_KEY, "x"))
                    .send()
                    .await,
            ),
        ),
    ];
    for (what, got) in &tries {
        assert_eq!(got, DENIED_BY_SCP, "{what}");
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn no_one_but_killswitchs_roles_can_untag_or_edit_a_contained_user() {
    in_guarded_account(|g| async move {
        let user = unique("leaky");
        let leaked = g.user(&user).await;
        let bystander = unique("bystander");
        let bystander_key = g.user(&bystander).await;
        settle().await;
        contain(g, &user, &leaked).await;
        settle().await;

        others_are_refused(g, &user, &leaked, &bystander).await;
        let owner = Guarded::iam(&g.owner).await;
        // Routine work on a tag-free user goes on.
        let routine = [
            outcome(
                owner
                    .tag_user()
                    .user_name(&bystander)
                    .tags(tag("team", "x"))
                    .send()
                    .await,
            ),
            outcome(
                owner
                    .put_user_policy()
                    .user_name(&bystander)
                    .policy_name("extra")
                    .policy_document(policy::deny_all())
                    .send()
                    .await,
            ),
            outcome(
                owner
                    .delete_user_policy()
                    .user_name(&bystander)
                    .policy_name("extra")
                    .send()
                    .await,
            ),
        ];
        assert_eq!(routine, ["ok", "ok", "ok"]);
        assert_eq!(holder_call(&bystander_key).await, "ok");
        let tags = owner
            .list_user_tags()
            .user_name(&user)
            .send()
            .await
            .unwrap();
        assert!(tags.tags().iter().any(|t| t.key() == CONTAINED_TAG_KEY));

        // The responder (restore) can: untag, lift the deny, reactivate; after D the key works.
        let responder = Guarded::iam(&g.responder).await;
        let restored = [
            outcome(
                responder
                    .untag_user()
                    .user_name(&user)
                    .tag_keys(CONTAINED_TAG_KEY)
                    .send()
                    .await,
            ),
            outcome(
                responder
                    .delete_user_policy()
                    .user_name(&user)
                    .policy_name(policy::USER_POLICY_NAME)
                    .send()
                    .await,
            ),
            outcome(
                responder
                    .update_access_key()
                    .user_name(&user)
                    .access_key_id(&leaked.id)
                    .status(StatusType::Active)
                    .send()
                    .await,
            ),
        ];
        assert_eq!(restored, ["ok", "ok", "ok"]);
        settle().await;
        assert_eq!(holder_call(&leaked).await, "ok");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_guarded_roles_session_deny_stays_and_its_other_sessions_keep_working() {
    in_guarded_account(|g| async move {
        let app = unique("app");
        let owner = Guarded::iam(&g.owner).await;
        admin_role(&owner, &app).await;
        settle().await;
        let arn = format!("arn:aws:iam::{}:role/{app}", g.account);
        let leaked = assume(&g.management, &arn, "leaked", None).await.unwrap();
        let other = assume(&g.management, &arn, "other", None).await.unwrap();
        let responder = Guarded::iam(&g.responder).await;
        let role_id = responder
            .get_role()
            .role_name(&app)
            .send()
            .await
            .unwrap()
            .role
            .unwrap()
            .role_id;
        let sessions: std::collections::BTreeSet<String> = [format!("{role_id}:leaked")].into();
        let written = [
            outcome(responder.tag_role().role_name(&app).tags(tag(GUARDED_TAG_KEY, "inc-guard")).send().await),
            outcome(
                responder
                    .put_role_policy()
                    .role_name(&app)
                    .policy_name(policy::SESSION_POLICY_NAME)
                    .policy_document(policy::deny_sessions(&sessions))
                    .send()
                    .await,
            ),
        ];
        assert_eq!(written, ["ok", "ok"]);
        settle().await;

        let lifted = [
            outcome(
                owner
                    .delete_role_policy()
                    .role_name(&app)
                    .policy_name(policy::SESSION_POLICY_NAME)
                    .send()
                    .await,
            ),
            outcome(owner.untag_role().role_name(&app).tag_keys(GUARDED_TAG_KEY).send().await),
            outcome(
                owner
                    .update_assume_role_policy()
                    .role_name(&app)
                    .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}]}).to_string())
                    .send()
                    .await,
            ),
        ];
        assert_eq!(lifted, [DENIED_BY_SCP, DENIED_BY_SCP, DENIED_BY_SCP]);
        // The role is not tagged contained: its other sessions work, the leaked one does not.
        assert_eq!(holder_call(&other).await, "ok");
        assert_ne!(holder_call(&leaked).await, "ok");
        // And killswitch's own roles are the holder's to touch no more than the deny.
        let member = aws_sdk_iam::Client::new(&sdk(&g.owner).await)
            .list_roles()
            .send()
            .await
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_owned())
            .find(|n| n.starts_with("KsMember"))
            .unwrap();
        let hijack = owner
            .update_assume_role_policy()
            .role_name(&member)
            .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}]}).to_string())
            .send()
            .await;
        assert_eq!(outcome(hijack), DENIED_BY_SCP);
    })
    .await;
}

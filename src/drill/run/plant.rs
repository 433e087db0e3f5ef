//! Setting the scene: the on-call inbox, the canary and its leaked credentials, the attacker's
//! script, the faults to rehearse.

use crate::aws::sandbox::{
    AttackerAction, Creds, local_portal_credentials, local_portal_seed, local_root_key_plant,
};

use super::*;

/// The names a scenario's resources carry, unique to this run.
pub(super) struct Names {
    pub tag: String,
    pub user: String,
    pub role: String,
    pub pivot_role: String,
}

impl Names {
    pub(super) fn new(tag: String) -> Self {
        Self {
            user: format!("drill-{tag}-canary"),
            role: format!("drill-{tag}-role"),
            pivot_role: format!("drill-{tag}-pivot"),
            tag,
        }
    }
}

/// The leaked credentials and whose they are.
pub(super) struct Leak {
    pub creds: Creds,
    /// The name the trigger event carries: the canary user, the role, the portal's role, or
    /// `Root`.
    pub principal_name: String,
    pub portal: Option<PortalUser>,
    /// The leaked session's `aws:userid`, written into the trigger as GuardDuty names it, for a
    /// racer scenario: its containment is then the exact session deny (other role drills keep
    /// the fixture's made-up principal, which rehearses the role-wide cutoff).
    pub session_userid: Option<String>,
}

/// A portal canary: an Identity Center user with an assignment.
pub(super) struct PortalUser {
    pub permission_set_arn: String,
    pub name: String,
    pub principal_id: String,
    pub user_id: String,
}

impl Play<'_> {
    /// The on-call inbox, or a topic that does not exist to rehearse SNS being down. Returns
    /// (the topic the function publishes to, the queue the summary arrives in).
    pub(super) async fn plant_inbox(
        &self,
        planted: &mut Planted,
    ) -> Result<(String, String), Error> {
        let (inbox_topic, queue_url) = self
            .sandbox
            .create_inbox(&format!("drill-{}", self.names.tag))
            .await?;
        planted.inbox = Some((inbox_topic.clone(), queue_url.clone()));
        let topic_arn = if self.s.faults.sns_unavailable {
            format!("{}-missing", inbox_topic)
        } else {
            inbox_topic
        };
        Ok((topic_arn, queue_url))
    }

    /// The canary and its leaked credentials.
    pub(super) async fn plant_canary(&self, planted: &mut Planted) -> Result<Leak, Error> {
        let leak = match self.s.canary.kind {
            CanaryKind::User => Leak {
                creds: self.plant_user(planted).await?,
                principal_name: self.names.user.clone(),
                portal: None,
                session_userid: None,
            },
            CanaryKind::Portal => {
                self.plant_user(planted).await?;
                self.plant_portal_canary()?
            }
            CanaryKind::Role => {
                self.plant_user(planted).await?;
                self.plant_role_canary(planted).await?
            }
            CanaryKind::Root => self.plant_root_canary(planted)?,
        };
        progress(
            &self.s.name,
            "planted",
            &format!(
                "{:?} {}, leaked key {}",
                self.s.canary.kind, leak.principal_name, leak.creds.access_key_id
            ),
        );
        Ok(leak)
    }

    /// The canary user and its key (the attacker's targets name it, whatever leaks).
    async fn plant_user(&self, planted: &mut Planted) -> Result<Creds, Error> {
        let user = &self.names.user;
        planted.users.push(user.clone());
        self.sandbox.create_user(user, &self.canary_actions()).await
    }

    /// A root access key of the function's account (a member of the organization), planted
    /// through the local AWS's control API as its root user would create it; removed at cleanup
    /// whatever the response did.
    fn plant_root_canary(&self, planted: &mut Planted) -> Result<Leak, Error> {
        let Target::Local { endpoint } = self.drill.target else {
            return Err(Error::Usage(
                "a root canary can only be rehearsed on the local AWS: only an account's root user can create a root access key, and a drill acts as an IAM principal; on a real member account, have its root user create a key and raise the finding by hand (docs/how-it-works.md#root-access-keys)".into(),
            ));
        };
        // The local AWS's root key signs sts:GetCallerIdentity and nothing else.
        if let Some(other) = self
            .s
            .attacker
            .iter()
            .find(|a| **a != AttackerAction::GetCallerIdentity)
        {
            let named = serde_json::to_string(other).unwrap_or_default();
            return Err(Error::Usage(format!(
                "a root canary's attacker can only call get_caller_identity (the local AWS's root key signs nothing else), not {named}"
            )));
        }
        let account = self.drill.responder.account.as_str();
        let creds = local_root_key_plant(endpoint, account)?;
        planted.root_key = Some((account.to_owned(), creds.access_key_id.clone()));
        Ok(Leak {
            creds,
            principal_name: "Root".into(),
            portal: None,
            session_userid: None,
        })
    }

    /// What the canary may do: a racing holder also has IAM rights on itself and others.
    fn canary_actions(&self) -> Vec<&'static str> {
        let mut actions = CANARY_ACTIONS.to_vec();
        if self.s.racer.is_some() {
            actions.extend(RACER_ACTIONS.iter().filter(|a| !CANARY_ACTIONS.contains(a)));
        }
        actions
    }

    fn plant_portal_canary(&self) -> Result<Leak, Error> {
        let Target::Local { endpoint } = self.drill.target else {
            return Err(Error::BadEvent(
                "a portal canary can only be rehearsed on the local AWS (it plays Identity Center's administrator and portal); on a real account, rehearse with a test Identity Center user by hand (docs/identity-center.md)".into(),
            ));
        };
        let tag = &self.names.tag;
        let account = self.drill.responder.account.as_str();
        let name = format!("drill-{tag}@example.com");
        let (ps, role_name, user_id) = local_portal_seed(
            endpoint,
            account,
            &format!("Drill{}", &tag[..tag.len().min(20)]),
            &name,
        )?;
        let (creds, principal) = local_portal_credentials(endpoint, account, &ps, &name)?
            .ok_or_else(|| Error::BadEvent("the local portal refused the canary".into()))?;
        Ok(Leak {
            creds,
            principal_name: role_name,
            portal: Some(PortalUser {
                permission_set_arn: ps,
                name,
                principal_id: principal,
                user_id,
            }),
            session_userid: None,
        })
    }

    async fn plant_role_canary(&self, planted: &mut Planted) -> Result<Leak, Error> {
        let role = &self.names.role;
        planted.roles.push(role.clone());
        let arn = self
            .sandbox
            .create_role(role, &self.drill.responder.arn, &self.role_canary_actions())
            .await?;
        // The role's trust takes IAM's lag to be in force before the first session.
        self.settle().await;
        let creds = self.sandbox.assume_role(&arn).await?;
        let session_userid = match self.s.racer {
            Some(_) => Some(self.sandbox.caller_userid(&creds).await?),
            None => None,
        };
        Ok(Leak {
            creds,
            principal_name: role.clone(),
            portal: None,
            session_userid,
        })
    }

    fn role_canary_actions(&self) -> Vec<&'static str> {
        let mut actions = vec!["iam:List*", "sts:GetCallerIdentity"];
        if self.s.racer.is_some() {
            actions.extend(RACER_ACTIONS.iter().filter(|a| **a != "iam:List*"));
        }
        actions
    }

    /// The attacker plays its script with the leaked credentials. Returns what it minted.
    pub(super) async fn play_attacker(
        &self,
        leaked: &Creds,
        planted: &mut Planted,
    ) -> Result<Vec<Creds>, Error> {
        let mut minted: Vec<Creds> = Vec::new();
        for action in &self.s.attacker {
            let target = self.attack_target(*action, planted).await?;
            if *action == AttackerAction::CreateUser {
                planted.users.push(target.clone());
            }
            let result = self.sandbox.attack(leaked, *action, &target).await;
            progress(
                &self.s.name,
                "attacker",
                &format!(
                    "{action:?} -> {}",
                    result
                        .as_ref()
                        .map(|_| "ok".to_string())
                        .unwrap_or_else(|c| c.clone())
                ),
            );
            if let Ok(Some(c)) = result {
                minted.push(c);
            }
        }
        Ok(minted)
    }

    /// What an attacker action acts on. The role to pivot into is created the first time.
    async fn attack_target(
        &self,
        action: AttackerAction,
        planted: &mut Planted,
    ) -> Result<String, Error> {
        let account = &self.drill.responder.account;
        Ok(match action {
            AttackerAction::CreateUser => format!("drill-{}-backdoor", self.names.tag),
            AttackerAction::CreateAccessKey => self.names.user.clone(),
            AttackerAction::AssumeRole => {
                let pivot_role = &self.names.pivot_role;
                if !planted.roles.contains(pivot_role) {
                    planted.roles.push(pivot_role.clone());
                    let canary_arn = format!("arn:aws:iam::{account}:user/{}", self.names.user);
                    self.sandbox
                        .create_role(pivot_role, &canary_arn, &["iam:List*"])
                        .await?;
                }
                format!("arn:aws:iam::{account}:role/{pivot_role}")
            }
            AttackerAction::GetCallerIdentity | AttackerAction::ListUsers => String::new(),
        })
    }

    /// CloudTrail failing or late for the leaked key (local AWS only); lifted at cleanup.
    pub(super) fn plant_faults(&self, key: &str, planted: &mut Planted) -> Result<(), Error> {
        let faults = &self.s.faults;
        if faults.cloudtrail_unavailable {
            let endpoint = self.local_endpoint("cloudtrail_unavailable")?;
            local_cloudtrail_fault(endpoint, key, true)?;
            planted.fault_key = Some(key.to_owned());
        }
        if faults.cloudtrail_lag_seconds > 0 {
            let endpoint = self.local_endpoint("cloudtrail_lag_seconds")?;
            local_cloudtrail_lag(endpoint, key, faults.cloudtrail_lag_seconds)?;
            planted.lag_key = Some(key.to_owned());
        }
        Ok(())
    }

    fn local_endpoint(&self, fault: &str) -> Result<&str, Error> {
        match self.drill.target {
            Target::Local { endpoint } => Ok(endpoint),
            Target::Account { .. } => Err(Error::BadEvent(format!(
                "{fault} can only be rehearsed on the local AWS"
            ))),
        }
    }
}

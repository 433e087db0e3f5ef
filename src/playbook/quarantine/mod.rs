//! The organization-level quarantine (optional): a service control policy on the key's account
//! that denies the leaked principal. An attacker holding another admin credential in that
//! account can delete an inline deny; nothing in the account can change an SCP. One policy per
//! account (`killswitch-quarantine-ACCOUNT`) holds every quarantined principal, so the 5-SCP
//! per-target quota is used once. It is an extra layer: the IAM containment does not wait on
//! it, and its failure is reported, not retried as a containment failure.

mod policy;

use chrono::Utc;
use serde::Serialize;

use super::lease::Lease;
use super::{Plan, Step};
use crate::config::Quarantine;
use crate::error::{AwsFailure, Error};
use crate::ports::{IncidentStore, Organization, Scp, ServiceControlPolicies};
pub use crate::record::{Entry, Quarantined};
use crate::report::{Outcome, Report};
use crate::vocab::Arn;
pub use policy::{Parsed, document, parse};

/// Organizations' limit on an SCP document, whitespace included (we write none).
pub const MAX_SCP_CHARS: usize = 5120;

/// What the quarantine role (`quarantine-role.yaml`) must grant: exactly what this module calls.
pub const ORGANIZATIONS_PERMISSIONS: [&str; 8] = [
    "organizations:DescribeOrganization",
    "organizations:ListPolicies",
    "organizations:DescribePolicy",
    "organizations:CreatePolicy",
    "organizations:UpdatePolicy",
    "organizations:ListPoliciesForTarget",
    "organizations:AttachPolicy",
    "organizations:TagResource",
];

/// What only `killswitch restore` calls, through the same role.
pub const RESTORE_PERMISSIONS: [&str; 2] =
    ["organizations:DetachPolicy", "organizations:DeletePolicy"];

/// Read-writes that lose a concurrent writer's entry are redone this often.
const ATTEMPTS: usize = 3;

/// What an SCP never covers: said in every notice that mentions the quarantine.
pub use crate::report::words::next_steps::QUARANTINE_NOT_COVERED as NOT_COVERED;

/// How often a writer waiting for the account's quarantine lease asks again.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

fn lease_id(account: &str) -> String {
    format!("quarantine-lease#{account}")
}

pub fn policy_name(account: &str) -> String {
    format!("killswitch-quarantine-{account}")
}

fn partition_of(role_arn: &str) -> &str {
    Arn::parse(role_arn).map_or("aws", |arn| arn.partition)
}

/// Why a quarantine could not be placed, in words for on-call.
fn explain(e: &Error) -> String {
    let chain = e.chain();
    if chain.contains("MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED") {
        format!(
            "the account already has 5 SCPs attached directly (Organizations' limit): detach one or attach the quarantine policy by hand ({chain})"
        )
    } else if chain.contains("POLICY_CONTENT_LIMIT_EXCEEDED") {
        format!(
            "the quarantine policy is full (5,120 characters): restore old incidents to free it ({chain})"
        )
    } else {
        chain
    }
}

/// Places the principal in the account's quarantine policy, attaches it, and reads both back.
/// `None` when nothing was placed (the management account, a failure: the step says which).
/// With an incident table, writers of one account's policy take turns (`store`): Organizations
/// has no conditional write, so two read-modify-writes at once would drop an entry.
pub async fn apply<O: Organization, S: IncidentStore>(
    cloud: &O,
    store: Option<&S>,
    config: &Quarantine,
    account: &str,
    plan: &Plan,
    session_name: &str,
    report: &mut Report,
) -> Option<Quarantined> {
    let entry = Entry::for_plan(plan)?;
    let at = Utc::now();
    let lease = Lease::take(store, lease_id(account), LEASE_POLL).await;
    let placed = place(cloud, config, account, &entry, session_name).await;
    lease.give_back().await;
    match placed {
        Ok(Placed::Management) => {
            report.record(
                Step::Quarantine,
                Outcome::Skipped,
                format!("account {account} is the organization's management account, which no SCP restricts: the IAM deny is all there is"),
                at,
            );
            None
        }
        Ok(Placed::Done {
            q,
            changed,
            rewrote,
        }) => {
            report.record(
                Step::Quarantine,
                if changed {
                    Outcome::Done
                } else {
                    Outcome::AlreadyDone
                },
                format!(
                    "SCP {} ({}) on account {account} denies {entry}; read back: in the policy and attached.{} {NOT_COVERED}",
                    q.policy_name,
                    q.policy_id,
                    if rewrote {
                        " A statement under killswitch's name was TAMPERED OR DECOY (not what killswitch writes) and was rewritten: find who changed the policy."
                    } else {
                        ""
                    }
                ),
                at,
            );
            Some(q)
        }
        Err(e) => {
            report.record(
                Step::Quarantine,
                Outcome::Failed,
                format!(
                    "org quarantine NOT in place (the IAM containment stands): {}",
                    explain(&e)
                ),
                at,
            );
            None
        }
    }
}

enum Placed {
    Management,
    Done {
        q: Quarantined,
        changed: bool,
        rewrote: bool,
    },
}

async fn place<O: Organization>(
    cloud: &O,
    config: &Quarantine,
    account: &str,
    entry: &Entry,
    session_name: &str,
) -> Result<Placed, Error> {
    let org = cloud
        .enter_organization(&config.role_arn, &config.external_id, session_name)
        .await?;
    if org.management_account().await? == account {
        return Ok(Placed::Management);
    }
    let name = policy_name(account);
    let scp = Target {
        org: &org,
        name: &name,
        partition: partition_of(&config.role_arn),
        account,
        entry,
    };
    let mut changed = false;
    let mut rewrote = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(300 * attempt as u64)).await;
        }
        let Some((policy, created)) = scp.find_or_create().await? else {
            continue;
        };
        let (updated, tampered) = scp.merge(&policy).await?;
        let attached = scp.attach(&policy.id).await?;
        changed |= created || updated || attached;
        rewrote |= tampered;
        if scp.holds(&policy.id).await? {
            return Ok(Placed::Done {
                q: Quarantined {
                    policy_id: policy.id,
                    policy_name: name,
                    account: account.to_owned(),
                    entry: entry.clone(),
                    at: Utc::now(),
                },
                changed,
                rewrote,
            });
        }
    }
    Err(Error::BadEvent(format!(
        "the quarantine policy {name} did not hold the entry after {ATTEMPTS} read-writes (concurrent changes)"
    )))
}

/// One read-modify-write of the account's quarantine policy, placing one entry.
struct Target<'a, P> {
    org: &'a P,
    name: &'a str,
    partition: &'a str,
    account: &'a str,
    entry: &'a Entry,
}

impl<P: ServiceControlPolicies> Target<'_, P> {
    /// The account's policy, and whether it was created now (with the entry in it). `None`:
    /// another incident created it first; read again and merge into theirs.
    async fn find_or_create(&self) -> Result<Option<(Scp, bool)>, Error> {
        if let Some(p) = self.org.find_policy(self.name).await? {
            return Ok(Some((p, false)));
        }
        let (account, name) = (self.account, self.name);
        let content = document(
            self.partition,
            account,
            std::slice::from_ref(self.entry),
            &[],
        );
        let description = format!(
            "killswitch quarantine of leaked credentials in account {account}; lifted by killswitch restore"
        );
        match self.org.create_policy(name, &description, &content).await {
            Ok(id) => Ok(Some((Scp { id, content }, true))),
            Err(e) if e.is(AwsFailure::AlreadyExists) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds the entry (and rewrites a tampered statement of ours). `(changed, rewrote)`.
    async fn merge(&self, policy: &Scp) -> Result<(bool, bool), Error> {
        let parsed = parse(&policy.content, self.partition, self.account);
        if parsed.entries.contains(self.entry) && !parsed.tampered {
            return Ok((false, false));
        }
        let mut entries = parsed.entries;
        if !entries.contains(self.entry) {
            entries.push(self.entry.clone());
        }
        entries.sort();
        let content = document(self.partition, self.account, &entries, &parsed.others);
        if content.chars().count() > MAX_SCP_CHARS {
            return Err(Error::BadEvent(format!(
                "POLICY_CONTENT_LIMIT_EXCEEDED: {} principals would need {} characters",
                entries.len(),
                content.chars().count()
            )));
        }
        self.org.update_policy(&policy.id, &content).await?;
        Ok((true, parsed.tampered))
    }

    /// Attaches the policy to the account unless it is. Whether it was attached now.
    async fn attach(&self, id: &str) -> Result<bool, Error> {
        if self.attached(id).await? {
            return Ok(false);
        }
        match self.org.attach_policy(id, self.account).await {
            Ok(()) => Ok(true),
            Err(e) if e.is(AwsFailure::AlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Read back: a writer without the lease (no incident table) can still drop ours.
    async fn holds(&self, id: &str) -> Result<bool, Error> {
        let now = self.org.find_policy(self.name).await?;
        let held = now.as_ref().is_some_and(|p| {
            let back = parse(&p.content, self.partition, self.account);
            back.entries.contains(self.entry) && !back.tampered
        });
        let attached = self.attached(id).await?;
        Ok(held && attached)
    }

    async fn attached(&self, id: &str) -> Result<bool, Error> {
        let ids = self.org.policies_for(self.account).await?;
        Ok(ids.iter().any(|p| p == id))
    }
}

/// What `killswitch status` reads back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// In the policy exactly as killswitch writes it, and the policy attached to the account.
    Stands,
    /// Not in the policy, the policy detached or gone, or its statement changed.
    Lifted,
}

pub async fn read<O: Organization>(
    cloud: &O,
    config: &Quarantine,
    q: &Quarantined,
) -> Result<Standing, Error> {
    let org = cloud
        .enter_organization(&config.role_arn, &config.external_id, "killswitch-status")
        .await?;
    // By name: a policy deleted and created again (another incident) is the quarantine too.
    let Some(policy) = org.find_policy(&q.policy_name).await? else {
        return Ok(Standing::Lifted);
    };
    let back = parse(&policy.content, partition_of(&config.role_arn), &q.account);
    let held = back.entries.contains(&q.entry) && !back.tampered;
    let attached = org.policies_for(&q.account).await?.contains(&policy.id);
    Ok(if held && attached {
        Standing::Stands
    } else {
        Standing::Lifted
    })
}

/// Takes the principal out of the policy; the last one out detaches and deletes it.
pub async fn lift<O: Organization, S: IncidentStore>(
    cloud: &O,
    store: Option<&S>,
    config: &Quarantine,
    q: &Quarantined,
) -> Result<String, Error> {
    let org = cloud
        .enter_organization(&config.role_arn, &config.external_id, "killswitch-restore")
        .await?;
    let lease = Lease::take(store, lease_id(&q.account), LEASE_POLL).await;
    let result = lift_in(&org, config, q).await;
    lease.give_back().await;
    result
}

async fn lift_in<P: ServiceControlPolicies>(
    org: &P,
    config: &Quarantine,
    q: &Quarantined,
) -> Result<String, Error> {
    let Some(policy) = org.find_policy(&q.policy_name).await? else {
        return Ok(format!(
            "quarantine policy {} is already gone",
            q.policy_name
        ));
    };
    let partition = partition_of(&config.role_arn);
    let parsed = parse(&policy.content, partition, &q.account);
    let mut entries = parsed.entries;
    entries.retain(|e| e != &q.entry);
    if entries.is_empty() && parsed.others.is_empty() {
        if org.policies_for(&q.account).await?.contains(&policy.id) {
            org.detach_policy(&policy.id, &q.account).await?;
        }
        org.delete_policy(&policy.id).await?;
        return Ok(format!(
            "took {} out of SCP {}: it held no one else, so it was detached from {} and deleted",
            q.entry, q.policy_name, q.account
        ));
    }
    let content = document(partition, &q.account, &entries, &parsed.others);
    org.update_policy(&policy.id, &content).await?;
    Ok(format!(
        "took {} out of SCP {} ({} other principal(s) stay quarantined)",
        q.entry,
        q.policy_name,
        entries.len()
    ))
}

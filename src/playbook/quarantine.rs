//! The organization-level quarantine (optional): a service control policy on the key's account
//! that denies the leaked principal. An attacker holding another admin credential in that
//! account can delete an inline deny; nothing in the account can change an SCP. One policy per
//! account (`killswitch-quarantine-ACCOUNT`) holds every quarantined principal, so the 5-SCP
//! per-target quota is used once. It is an extra layer: the IAM containment does not wait on
//! it, and its failure is reported, not retried as a containment failure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Plan, Step};
use crate::config::Quarantine;
use crate::error::Error;
use crate::ports::{Organization, Scp, ServiceControlPolicies};
use crate::report::{Outcome, Report};

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

const SID_PRINCIPALS: &str = "KillSwitchQuarantinePrincipals";
const SID_SESSIONS: &str = "KillSwitchQuarantineSessions";
const SID_ROLE: &str = "KillSwitchQuarantineRole";

/// What an SCP never covers: said in every notice that mentions the quarantine.
pub const NOT_COVERED: &str =
    "An SCP does not restrict the management account or service-linked roles.";

/// One quarantined principal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// An IAM user (`aws:PrincipalArn`, with or without a path).
    User { name: String },
    /// One role session (`aws:userid` = `ROLE-ID:session-name`).
    Session { userid: String },
    /// Every session of a role issued before the cutoff (`aws:TokenIssueTime`).
    RoleBefore { name: String, cutoff: DateTime<Utc> },
}

impl Entry {
    pub fn for_plan(plan: &Plan) -> Option<Self> {
        match plan {
            Plan::User { user, .. } => Some(Entry::User { name: user.clone() }),
            Plan::Role {
                session: Some(s), ..
            } => Some(Entry::Session { userid: s.clone() }),
            Plan::Role {
                role,
                cutoff: Some(c),
                ..
            } => Some(Entry::RoleBefore {
                name: role.clone(),
                cutoff: *c,
            }),
            Plan::Role { .. } => None,
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::User { name } => write!(f, "user {name}"),
            Entry::Session { userid } => write!(f, "session {userid}"),
            Entry::RoleBefore { name, cutoff } => write!(
                f,
                "sessions of role {name} issued before {}",
                crate::report::ts(*cutoff)
            ),
        }
    }
}

/// What the incident record keeps of a quarantine, for status and restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub policy_id: String,
    pub policy_name: String,
    pub account: String,
    pub entry: Entry,
    pub at: DateTime<Utc>,
}

pub fn policy_name(account: &str) -> String {
    format!("killswitch-quarantine-{account}")
}

/// `ARN/NAME` and `ARN/*/NAME`: the name with any path, and nothing else (IAM names are
/// unique in an account; `*` cannot stand for the `/` before the name).
fn arn_patterns(partition: &str, account: &str, kind: &str, name: &str) -> [String; 2] {
    [
        format!("arn:{partition}:iam::{account}:{kind}/{name}"),
        format!("arn:{partition}:iam::{account}:{kind}/*/{name}"),
    ]
}

/// The entries a policy document of ours holds; statements not ours are kept apart, untouched.
pub fn parse(content: &str, account: &str) -> (Vec<Entry>, Vec<Value>) {
    let Ok(doc) = serde_json::from_str::<Value>(content) else {
        return (Vec::new(), Vec::new());
    };
    let mut entries = Vec::new();
    let mut others = Vec::new();
    let statements = doc
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let name_of = |arn: &str, kind: &str| {
        let prefix = format!(":{account}:{kind}/");
        arn.split_once(&prefix)
            .filter(|(_, rest)| !rest.starts_with("*/"))
            .map(|(_, rest)| rest.to_owned())
    };
    for st in statements {
        let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("");
        let strings = |pointer: &str| -> Vec<String> {
            match st.pointer(pointer) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        if sid == SID_PRINCIPALS {
            for arn in strings("/Condition/ArnLike/aws:PrincipalArn") {
                if let Some(name) = name_of(&arn, "user") {
                    entries.push(Entry::User { name });
                }
            }
        } else if sid == SID_SESSIONS {
            for userid in strings("/Condition/StringEquals/aws:userid") {
                entries.push(Entry::Session { userid });
            }
        } else if sid.starts_with(SID_ROLE) {
            let cutoff = strings("/Condition/DateLessThan/aws:TokenIssueTime")
                .first()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let name = strings("/Condition/ArnLike/aws:PrincipalArn")
                .iter()
                .find_map(|a| name_of(a, "role"));
            if let (Some(name), Some(cutoff)) = (name, cutoff) {
                entries.push(Entry::RoleBefore { name, cutoff });
            }
        } else {
            others.push(st);
        }
    }
    entries.sort();
    entries.dedup();
    (entries, others)
}

/// The policy document for these entries: compact (Organizations counts whitespace).
pub fn document(partition: &str, account: &str, entries: &[Entry], others: &[Value]) -> String {
    let deny = |sid: String, condition: Value| json!({"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition});
    let mut statements: Vec<Value> = others.to_vec();
    let users: Vec<String> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::User { name } => Some(arn_patterns(partition, account, "user", name)),
            _ => None,
        })
        .flatten()
        .collect();
    if !users.is_empty() {
        statements.push(deny(
            SID_PRINCIPALS.into(),
            json!({"ArnLike": {"aws:PrincipalArn": users}}),
        ));
    }
    let sessions: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Session { userid } => Some(userid.as_str()),
            _ => None,
        })
        .collect();
    if !sessions.is_empty() {
        statements.push(deny(
            SID_SESSIONS.into(),
            json!({"StringEquals": {"aws:userid": sessions}}),
        ));
    }
    for (i, e) in entries.iter().enumerate() {
        if let Entry::RoleBefore { name, cutoff } = e {
            statements.push(deny(
                format!("{SID_ROLE}{i}"),
                json!({
                    "ArnLike": {"aws:PrincipalArn": arn_patterns(partition, account, "role", name)},
                    "DateLessThan": {"aws:TokenIssueTime": cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
                }),
            ));
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn partition_of(role_arn: &str) -> &str {
    role_arn.split(':').nth(1).unwrap_or("aws")
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
/// `Ok(None)` when there is nothing to do (no quarantine role, the management account).
pub async fn apply<O: Organization>(
    cloud: &O,
    config: &Quarantine,
    account: &str,
    plan: &Plan,
    session_name: &str,
    report: &mut Report,
) -> Option<Quarantined> {
    let entry = Entry::for_plan(plan)?;
    let at = Utc::now();
    match place(cloud, config, account, &entry, session_name).await {
        Ok(Placed::Management) => {
            report.record(
                Step::Quarantine,
                Outcome::Skipped,
                format!("account {account} is the organization's management account, which no SCP restricts: the IAM deny is all there is"),
                at,
            );
            None
        }
        Ok(Placed::Done { q, changed }) => {
            report.record(
                Step::Quarantine,
                if changed {
                    Outcome::Done
                } else {
                    Outcome::AlreadyDone
                },
                format!(
                    "SCP {} ({}) on account {account} denies {entry}; read back: in the policy and attached. {NOT_COVERED}",
                    q.policy_name, q.policy_id
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
    Done { q: Quarantined, changed: bool },
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
    let partition = partition_of(&config.role_arn);
    let mut changed = false;
    for _ in 0..ATTEMPTS {
        let policy = match org.find_policy(&name).await? {
            Some(p) => p,
            None => {
                let content = document(partition, account, std::slice::from_ref(entry), &[]);
                let description = format!(
                    "killswitch quarantine of leaked credentials in account {account}; lifted by killswitch restore"
                );
                match org.create_policy(&name, &description, &content).await {
                    Ok(id) => {
                        changed = true;
                        Scp { id, content }
                    }
                    // Another incident created it first: merge into theirs.
                    Err(e) if e.aws_code() == Some("DuplicatePolicyException") => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        let (mut entries, others) = parse(&policy.content, account);
        if !entries.contains(entry) {
            entries.push(entry.clone());
            entries.sort();
            let content = document(partition, account, &entries, &others);
            if content.chars().count() > MAX_SCP_CHARS {
                return Err(Error::BadEvent(format!(
                    "POLICY_CONTENT_LIMIT_EXCEEDED: {} principals would need {} characters",
                    entries.len(),
                    content.chars().count()
                )));
            }
            org.update_policy(&policy.id, &content).await?;
            changed = true;
        }
        if !org.policies_for(account).await?.contains(&policy.id) {
            match org.attach_policy(&policy.id, account).await {
                Ok(()) => changed = true,
                Err(e) if e.aws_code() == Some("DuplicatePolicyAttachmentException") => {}
                Err(e) => return Err(e),
            }
        }
        // Read back: Organizations has no conditional write, so a concurrent incident's
        // update can drop ours; then merge again.
        let now = org.find_policy(&name).await?;
        let held = now
            .as_ref()
            .is_some_and(|p| parse(&p.content, account).0.contains(entry));
        let attached = org.policies_for(account).await?.contains(&policy.id);
        if held && attached {
            return Ok(Placed::Done {
                q: Quarantined {
                    policy_id: policy.id,
                    policy_name: name,
                    account: account.to_owned(),
                    entry: entry.clone(),
                    at: Utc::now(),
                },
                changed,
            });
        }
    }
    Err(Error::BadEvent(format!(
        "the quarantine policy {name} did not hold the entry after {ATTEMPTS} read-writes (concurrent changes)"
    )))
}

/// What `killswitch status` reads back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// In the policy, and the policy attached to the account.
    Stands,
    /// Not in the policy, or the policy detached or gone.
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
    let held = parse(&policy.content, &q.account).0.contains(&q.entry);
    let attached = org.policies_for(&q.account).await?.contains(&policy.id);
    Ok(if held && attached {
        Standing::Stands
    } else {
        Standing::Lifted
    })
}

/// Takes the principal out of the policy; the last one out detaches and deletes it.
pub async fn lift<O: Organization>(
    cloud: &O,
    config: &Quarantine,
    q: &Quarantined,
) -> Result<String, Error> {
    let org = cloud
        .enter_organization(&config.role_arn, &config.external_id, "killswitch-restore")
        .await?;
    let Some(policy) = org.find_policy(&q.policy_name).await? else {
        return Ok(format!(
            "quarantine policy {} is already gone",
            q.policy_name
        ));
    };
    let (mut entries, others) = parse(&policy.content, &q.account);
    entries.retain(|e| e != &q.entry);
    if entries.is_empty() && others.is_empty() {
        if org.policies_for(&q.account).await?.contains(&policy.id) {
            org.detach_policy(&policy.id, &q.account).await?;
        }
        org.delete_policy(&policy.id).await?;
        return Ok(format!(
            "took {} out of SCP {}: it held no one else, so it was detached from {} and deleted",
            q.entry, q.policy_name, q.account
        ));
    }
    let content = document(
        partition_of(&config.role_arn),
        &q.account,
        &entries,
        &others,
    );
    org.update_policy(&policy.id, &content).await?;
    Ok(format!(
        "took {} out of SCP {} ({} other principal(s) stay quarantined)",
        q.entry,
        q.policy_name,
        entries.len()
    ))
}

//! The organization-level quarantine (optional): a service control policy on the key's account
//! that denies the leaked principal. An attacker holding another admin credential in that
//! account can delete an inline deny; nothing in the account can change an SCP. One policy per
//! account (`killswitch-quarantine-ACCOUNT`) holds every quarantined principal, so the 5-SCP
//! per-target quota is used once. It is an extra layer: the IAM containment does not wait on
//! it, and its failure is reported, not retried as a containment failure.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::lease::Lease;
use super::{Plan, Step};
use crate::config::Quarantine;
use crate::error::Error;
use crate::ports::{IncidentStore, Organization, Scp, ServiceControlPolicies};
pub use crate::record::{Entry, Quarantined};
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
pub const NOT_COVERED: &str = "An SCP does not restrict the management account or service-linked roles, and it does not reach sessions the user minted with GetFederationToken (their ARN is federated-user/NAME): the inline deny covers those.";

/// How often a writer waiting for the account's quarantine lease asks again.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

fn lease_id(account: &str) -> String {
    format!("quarantine-lease#{account}")
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

/// What a quarantine policy holds: our entries, the statements not ours (kept untouched), and
/// whether a statement under one of our Sids is not exactly what we write (a decoy or an edit:
/// it may deny nothing, so it never counts as standing and is rewritten).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub others: Vec<Value>,
    pub tampered: bool,
}

fn is_iam_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn is_userid(u: &str) -> bool {
    u.split_once(':').is_some_and(|(id, session)| {
        id.starts_with("AROA")
            && id.len() <= 128
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    })
}

/// Reads a policy document: names are checked against IAM's rules (a wildcard would deny a
/// whole account) and each statement of ours against what [`document`] writes for it.
pub fn parse(content: &str, partition: &str, account: &str) -> Parsed {
    let Ok(doc) = serde_json::from_str::<Value>(content) else {
        return Parsed {
            tampered: true,
            ..Parsed::default()
        };
    };
    let mut out = Parsed::default();
    let statements = doc
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let name_of = |arn: &str, kind: &str| {
        let prefix = format!("arn:{partition}:iam::{account}:{kind}/");
        arn.strip_prefix(&prefix)
            .filter(|n| is_iam_name(n))
            .map(str::to_owned)
    };
    let strings = |st: &Value, pointer: &str| -> Vec<String> {
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
    for st in statements {
        let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("");
        let found: Vec<Entry> = if sid == SID_PRINCIPALS {
            strings(&st, "/Condition/ArnLike/aws:PrincipalArn")
                .iter()
                .filter_map(|a| name_of(a, "user"))
                .map(|name| Entry::User { name })
                .collect()
        } else if sid == SID_SESSIONS {
            strings(&st, "/Condition/StringEquals/aws:userid")
                .into_iter()
                .filter(|u| is_userid(u))
                .map(|userid| Entry::Session { userid })
                .collect()
        } else if sid.starts_with(SID_ROLE) {
            let cutoff = strings(&st, "/Condition/DateLessThan/aws:TokenIssueTime")
                .first()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let name = strings(&st, "/Condition/ArnLike/aws:PrincipalArn")
                .iter()
                .find_map(|a| name_of(a, "role"));
            match (name, cutoff) {
                (Some(name), Some(cutoff)) => vec![Entry::RoleBefore { name, cutoff }],
                _ => Vec::new(),
            }
        } else {
            out.others.push(st);
            continue;
        };
        // Ours only if it is exactly what we would write for what it names.
        let canonical: Value =
            serde_json::from_str(&document(partition, account, &found, &[])).unwrap_or(Value::Null);
        let exact = canonical["Statement"]
            .as_array()
            .is_some_and(|c| c.len() == 1 && same_statement(&c[0], &st));
        if !exact {
            out.tampered = true;
        }
        out.entries.extend(found);
    }
    out.entries.sort();
    out.entries.dedup();
    out
}

/// Equal but for the Sid's index of a role statement (its position may differ).
fn same_statement(ours: &Value, theirs: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("Sid");
        }
        v
    };
    strip(ours) == strip(theirs)
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
    let partition = partition_of(&config.role_arn);
    let mut changed = false;
    let mut rewrote = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(300 * attempt as u64)).await;
        }
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
        let parsed = parse(&policy.content, partition, account);
        if !parsed.entries.contains(entry) || parsed.tampered {
            rewrote |= parsed.tampered;
            let mut entries = parsed.entries;
            if !entries.contains(entry) {
                entries.push(entry.clone());
            }
            entries.sort();
            let content = document(partition, account, &entries, &parsed.others);
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
        // Read back: a writer without the lease (no incident table) can still drop ours.
        let now = org.find_policy(&name).await?;
        let held = now.as_ref().is_some_and(|p| {
            let back = parse(&p.content, partition, account);
            back.entries.contains(entry) && !back.tampered
        });
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
                rewrote,
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

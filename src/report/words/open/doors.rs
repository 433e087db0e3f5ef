//! The doors a successful call leaves open (logging stopped, detection changed, a new user, a
//! policy changed, instances launched…), each with the commands that look at or close it. Pure.

use super::{OpenItem, OpenKind, field, region, safe};
use crate::analysis::{Category, Notable};
use crate::report::words::safe::{defang, quoted, ts};

/// A notable call that STILL OPEN lists.
pub fn is_open_notable(n: &Notable) -> bool {
    n.error_code.is_none() && from_notable(n).is_some()
}

/// The kind of door a call leaves open: it succeeded, and it is not a pivot (those are listed
/// from the pivots, with their own commands).
pub fn door_kind(n: &Notable) -> Option<OpenKind> {
    if n.error_code.is_some() || n.category == Category::CredentialMinting {
        return None;
    }
    from_notable(n).map(|i| i.kind)
}

pub(super) fn from_notable(n: &Notable) -> Option<OpenItem> {
    let mut item = door(n)?;
    // A name too odd to paste into a shell is still shown, inert, so a human can look it up.
    if item
        .commands
        .iter()
        .any(|c| c.contains("-NAME") || c.contains("-ID "))
        || item.commands.iter().any(|c| c.ends_with("-ID"))
    {
        item.what
            .push_str(&format!(" (as logged: {})", quoted(&n.details)));
    }
    Some(item)
}

/// One call, read for the door it leaves: where, when, and a CloudTrail search for it.
struct Door<'a> {
    n: &'a Notable,
    name: &'a str,
    r: &'a str,
    at: String,
}

impl Door<'_> {
    /// A value of the call's details fit to paste into a shell.
    fn named(&self, f: &str) -> Option<&str> {
        field(self.n, f).and_then(safe)
    }

    fn lookup(&self) -> String {
        format!(
            "aws cloudtrail lookup-events --region {} --lookup-attributes AttributeKey=EventName,AttributeValue={}",
            self.r,
            safe(self.name).unwrap_or("EVENT")
        )
    }

    fn service(&self) -> &str {
        self.n.event_source.trim_end_matches(".amazonaws.com")
    }
}

fn item(kind: OpenKind, what: String, commands: Vec<String>) -> OpenItem {
    OpenItem {
        kind,
        what,
        commands,
    }
}

fn door(n: &Notable) -> Option<OpenItem> {
    let d = Door {
        n,
        name: n.event_name.as_str(),
        r: region(&n.region),
        at: ts(n.time),
    };
    match (n.event_source.as_str(), d.name) {
        ("cloudtrail.amazonaws.com", _) => Some(cloudtrail(&d)),
        ("guardduty.amazonaws.com", _) => Some(guardduty(&d)),
        ("events.amazonaws.com", "DisableRule") => {
            let rule = d.named("name").unwrap_or("RULE-NAME");
            Some(item(
                OpenKind::ResponseTampered,
                format!("EventBridge rule {rule} DISABLED ({}) at {}", d.r, d.at),
                vec![format!("aws events enable-rule --name {rule} --region {}", d.r)],
            ))
        }
        _ if n.category == Category::AgainstResponse => Some(item(
            OpenKind::ResponseTampered,
            format!(
                "{}:{} against the response ({}) at {}",
                d.service(),
                d.name,
                d.r,
                d.at
            ),
            vec![
                d.lookup(),
                "sam deploy   (redeploy killswitch's stack to put its function, rules, topic and queue back)".into(),
            ],
        )),
        _ => iam_ec2_or_other(&d),
    }
}

fn cloudtrail(d: &Door) -> OpenItem {
    let (r, at, name) = (d.r, &d.at, d.name);
    match name {
        "StopLogging" => {
            let trail = d.named("name").unwrap_or("TRAIL-NAME");
            item(
                OpenKind::LoggingStopped,
                format!("CloudTrail logging stopped ({trail}, {r}) at {at}"),
                vec![format!(
                    "aws cloudtrail start-logging --name {trail} --region {r}"
                )],
            )
        }
        "DeleteTrail" => {
            let trail = d.named("name").unwrap_or("TRAIL-NAME");
            item(
                OpenKind::LoggingStopped,
                format!("CloudTrail trail {trail} DELETED ({r}) at {at}"),
                vec![
                    format!("aws cloudtrail describe-trails --region {r}"),
                    format!(
                        "aws cloudtrail create-trail --name {trail} --s3-bucket-name YOUR-LOG-BUCKET --is-multi-region-trail --region {r} && aws cloudtrail start-logging --name {trail} --region {r}"
                    ),
                ],
            )
        }
        _ => {
            let trail = d
                .named("name")
                .or_else(|| d.named("trailName"))
                .unwrap_or("TRAIL-NAME");
            item(
                OpenKind::LoggingStopped,
                format!("CloudTrail {name} on {trail} ({r}) at {at}"),
                vec![
                    format!("aws cloudtrail get-trail-status --name {trail} --region {r}"),
                    format!("aws cloudtrail get-event-selectors --trail-name {trail} --region {r}"),
                ],
            )
        }
    }
}

fn guardduty(d: &Door) -> OpenItem {
    let (r, at, name) = (d.r, &d.at, d.name);
    if name == "DeleteDetector" {
        return item(
            OpenKind::DetectionChanged,
            format!("GuardDuty detector DELETED ({r}) at {at}"),
            vec![format!(
                "aws guardduty create-detector --enable --region {r}"
            )],
        );
    }
    let detector = d.named("detectorId").unwrap_or("DETECTOR-ID");
    item(
        OpenKind::DetectionChanged,
        format!("GuardDuty {name} ({r}) at {at}"),
        vec![
            format!("aws guardduty get-detector --detector-id {detector} --region {r}"),
            format!("aws guardduty list-filters --detector-id {detector} --region {r}"),
            d.lookup(),
        ],
    )
}

fn iam_ec2_or_other(d: &Door) -> Option<OpenItem> {
    let (n, r, at, name) = (d.n, d.r, &d.at, d.name);
    match (n.event_source.as_str(), name) {
        ("iam.amazonaws.com", "CreateUser") => {
            let user = d.named("userName").unwrap_or("USER-NAME");
            Some(item(
                OpenKind::NewUser,
                format!("new IAM user {user} at {at}"),
                vec![
                    format!("aws iam list-access-keys --user-name {user}"),
                    format!("aws iam get-login-profile --user-name {user}"),
                ],
            ))
        }
        (
            "iam.amazonaws.com",
            "AttachUserPolicy"
            | "PutUserPolicy"
            | "AttachRolePolicy"
            | "PutRolePolicy"
            | "AttachGroupPolicy"
            | "PutGroupPolicy"
            | "CreatePolicyVersion"
            | "SetDefaultPolicyVersion"
            | "AddUserToGroup",
        ) => Some(item(
            OpenKind::PolicyChanged,
            format!("{name} {} at {at}", defang(&n.details)),
            vec![policy_command(d)],
        )),
        (
            "ec2.amazonaws.com",
            "RunInstances" | "RequestSpotInstances" | "CreateFleet" | "RequestSpotFleet",
        ) => Some(item(
            OpenKind::Instances,
            format!("{name} in {r} at {at} {}", defang(&n.details)),
            vec![format!(
                "aws ec2 describe-instances --region {r} --filters Name=instance-state-name,Values=pending,running --query Reservations[].Instances[].[InstanceId,InstanceType,LaunchTime]"
            )],
        )),
        // Pivots have their own items (with their minted key or session).
        (
            "iam.amazonaws.com",
            "CreateAccessKey"
            | "CreateLoginProfile"
            | "UpdateLoginProfile"
            | "UpdateAssumeRolePolicy"
            | "CreateServiceSpecificCredential",
        ) => None,
        ("iam.amazonaws.com", _) if n.category == Category::Persistence => {
            Some(other_persistence(d))
        }
        _ if n.category == Category::DefenceEvasion => Some(item(
            OpenKind::DefenceEvasion,
            format!(
                "{}:{name} ({r}) at {at} {}",
                d.service(),
                defang(&n.details)
            ),
            vec![d.lookup()],
        )),
        _ if n.category == Category::Impact => Some(item(
            OpenKind::Impact,
            format!("{}:{name} in {r} at {at}", d.service()),
            vec![d.lookup()],
        )),
        _ => None,
    }
}

/// What a policy change touched, listed: the user's, role's or group's policies, or the
/// policy's versions.
fn policy_command(d: &Door) -> String {
    if let Some(u) = d.named("userName") {
        format!(
            "aws iam list-attached-user-policies --user-name {u} && aws iam list-user-policies --user-name {u}"
        )
    } else if let Some(role) = d.named("roleName") {
        format!(
            "aws iam list-attached-role-policies --role-name {role} && aws iam list-role-policies --role-name {role}"
        )
    } else if let Some(g) = d.named("groupName") {
        format!(
            "aws iam list-attached-group-policies --group-name {g} && aws iam list-group-policies --group-name {g}"
        )
    } else if let Some(p) = d.named("policyArn") {
        format!("aws iam list-policy-versions --policy-arn {p}")
    } else {
        d.lookup()
    }
}

fn other_persistence(d: &Door) -> OpenItem {
    let name = d.name;
    let mut commands = Vec::new();
    if let Some(u) = d.named("userName") {
        commands.push(format!("aws iam list-access-keys --user-name {u}"));
        if name == "UploadSSHPublicKey" {
            commands.push(format!("aws iam list-ssh-public-keys --user-name {u}"));
        }
        if name == "UploadSigningCertificate" {
            commands.push(format!("aws iam list-signing-certificates --user-name {u}"));
        }
    }
    if let Some(role) = d.named("roleName") {
        commands.push(format!("aws iam get-role --role-name {role}"));
    }
    commands.push(d.lookup());
    item(
        OpenKind::OtherPersistence,
        format!("{name} {} at {}", defang(&d.n.details), d.at),
        commands,
    )
}

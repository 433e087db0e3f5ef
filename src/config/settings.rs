//! Every `KILLSWITCH_*` setting, declared once: parsing reads its default and range here, and
//! tests hold `docs/configuration.md`'s table and `template.yaml`'s environment to this list.

/// What kind of value a setting takes; numbers and flags are parsed from this alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Flag {
        default: bool,
    },
    Number {
        default: u64,
        min: u64,
        max: u64,
    },
    /// Text checked by the code that uses it (ARNs, names, lists).
    Text,
}

/// How `template.yaml` sets a setting on the functions (in `Globals`, unless per function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// `!Ref Parameter` (a stack parameter or a resource).
    Ref(&'static str),
    /// Any other value, exactly as the template writes it.
    Literal(&'static str),
    /// Set by each function itself, not in `Globals`: (the function's logical ID, the value).
    PerFunction(&'static [(&'static str, &'static str)]),
    /// Not set by the template (the command line, tests or operators only).
    Unset,
}

#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub name: &'static str,
    pub value: Value,
    /// The default as the docs' table states it.
    pub default: &'static str,
    pub doc: &'static str,
    /// Never logged, printed or reported.
    pub secret: bool,
    pub template: Template,
}

const fn text(name: &'static str, default: &'static str, doc: &'static str) -> Setting {
    Setting {
        name,
        value: Value::Text,
        default,
        doc,
        secret: false,
        template: Template::Unset,
    }
}

const fn flag(name: &'static str, default: bool, doc: &'static str) -> Setting {
    Setting {
        name,
        value: Value::Flag { default },
        default: if default { "`true`" } else { "`false`" },
        doc,
        secret: false,
        template: Template::Unset,
    }
}

const fn number(
    name: &'static str,
    (default, min, max): (u64, u64, u64),
    shown: &'static str,
    doc: &'static str,
) -> Setting {
    Setting {
        name,
        value: Value::Number { default, min, max },
        default: shown,
        doc,
        secret: false,
        template: Template::Unset,
    }
}

impl Setting {
    const fn from(self, template: Template) -> Self {
        Setting { template, ..self }
    }

    const fn secret(self) -> Self {
        Setting {
            secret: true,
            ..self
        }
    }
}

use Template::{Literal, PerFunction, Ref};

pub const SETTINGS: &[Setting] = &[
    text(
        "KILLSWITCH_TOPIC_ARN",
        "required (not for `respond --dry-run`, `respond --no-notify` or `status`, which print)",
        "SNS topic for summaries",
    )
    .from(Ref("AlertTopic")),
    text(
        "KILLSWITCH_PROTECTED_PRINCIPALS",
        "empty",
        "user/role names or ARNs never touched",
    )
    .from(Ref("ProtectedPrincipals")),
    flag(
        "KILLSWITCH_DRY_RUN",
        false,
        "compute and report, make no IAM write",
    )
    .from(Ref("DryRun")),
    number(
        "KILLSWITCH_LOOKBACK_HOURS",
        (24, 1, 2160),
        "`24`",
        "CloudTrail window",
    )
    .from(Ref("LookbackHours")),
    number(
        "KILLSWITCH_VERIFY_DELAY_SECONDS",
        (10, 0, 600),
        "`10`",
        "second read-back after IAM's propagation window",
    )
    .from(Ref("VerifyDelaySeconds")),
    number(
        "KILLSWITCH_WATCH_SECONDS",
        (60, 0, 120),
        "`60`",
        "first-minute watch after containment: read about every 500 ms, undone writes re-applied at once, CONTESTED paged at the first (0: off)",
    )
    .from(Ref("WatchSeconds")),
    text(
        "KILLSWITCH_FUNCTION_TIMEOUT_SECONDS",
        "unset (command line)",
        "the Lambda timeout the verification delay must fit in",
    )
    .from(Literal("\"120\"")),
    text(
        "KILLSWITCH_ROLE_WIDE_REVOCATION",
        "empty = the leaked session only",
        "roles whose findings revoke every session",
    )
    .from(Ref("RoleWideRevocation")),
    flag(
        "KILLSWITCH_HEALTH_TRIGGER",
        false,
        "refuse to start where AWS Health's global events never arrive",
    )
    .from(Ref("EnableHealthTrigger")),
    text(
        "KILLSWITCH_REGIONS",
        "empty = every enabled Region",
        "Regions to search instead of discovering them",
    )
    .from(Ref("SearchRegions")),
    flag(
        "KILLSWITCH_FOLLOW_PIVOTS",
        false,
        "also contain what the attacker minted",
    )
    .from(Ref("FollowPivots")),
    number(
        "KILLSWITCH_SWEEP_MINUTES",
        (15, 5, 60),
        "`15`",
        "when the second CloudTrail search runs",
    )
    .from(Ref("SweepMinutes")),
    number(
        "KILLSWITCH_SWEEP_SECONDS",
        (900, 1, 3600),
        "unset",
        "the sweep's delay in seconds (tests and drills)",
    ),
    number(
        "KILLSWITCH_CLOUDTRAIL_LAG_MINUTES",
        (15, 1, 60),
        "`15`",
        "how late Event history may deliver an event",
    ),
    number(
        "KILLSWITCH_MAX_EVENTS_PER_REGION",
        (1000, 50, 100_000),
        "`1000`",
        "events read per Region",
    ),
    number(
        "KILLSWITCH_INVESTIGATION_SECONDS",
        (60, 1, 840),
        "`60`",
        "time budget for CloudTrail",
    ),
    number(
        "KILLSWITCH_WATCHDOG_GRACE_SECONDS",
        (1800, 0, 86_400),
        "`1800`",
        "how long past its due time a recorded follow-through or sweep may still run before the watchdog pages it",
    ),
    text(
        "KILLSWITCH_CANARY_USER",
        "empty = no canary",
        "the canary's IAM user, which the canary writes its policy on (must end in `-canary`)",
    )
    .from(Literal("!If [Canary, !Ref CanaryUser, \"\"]")),
    flag(
        "KILLSWITCH_CANARY_NOTICE",
        false,
        "the canary also publishes a HEARTBEAT notice on each success",
    )
    .from(Ref("CanaryNotice")),
    text(
        "KILLSWITCH_MEMBER_ROLE_NAME",
        "empty = this account only",
        "the role assumed in member accounts",
    )
    .from(Ref("MemberRoleName")),
    text(
        "KILLSWITCH_MEMBER_EXTERNAL_ID",
        "required with the role name",
        "the member roles' sts:ExternalId",
    )
    .from(Ref("MemberExternalId"))
    .secret(),
    text(
        "KILLSWITCH_MEMBER_ACCOUNTS",
        "required with the role name",
        "the accounts the function may enter",
    )
    .from(Ref("MemberAccounts")),
    text(
        "KILLSWITCH_FOLLOW_UP_QUEUE_URL",
        "empty = follow through in the same invocation",
        "the follow-through's SQS queue",
    )
    .from(Ref("FollowUpQueue")),
    text(
        "KILLSWITCH_INCIDENT_TABLE",
        "empty = no incident record",
        "the incident records' DynamoDB table",
    )
    .from(Ref("IncidentTable")),
    text(
        "KILLSWITCH_RECORD_KEY_ARN",
        "empty = records not sealed",
        "the KMS HMAC key that seals incident records (only the responder can sign with it)",
    )
    .from(Literal("!GetAtt RecordKey.Arn")),
    text(
        "KILLSWITCH_CHAT_TOPIC_ARN",
        "empty = no chat",
        "the chat integration's SNS topic",
    )
    .from(Ref("ChatTopicArn")),
    flag(
        "KILLSWITCH_SECURITY_HUB_UPDATES",
        true,
        "set Security Hub findings to NOTIFIED",
    )
    .from(Ref("SecurityHubUpdates")),
    flag(
        "KILLSWITCH_ACT_ON_CUSTOM_FINDINGS",
        false,
        "contain on GuardDuty findings an insider can raise on purpose (custom threat lists, custom detection rules)",
    )
    .from(Ref("ActOnCustomFindings")),
    text(
        "KILLSWITCH_ROOT_KEYS",
        "`notify`",
        "`notify` or `delete`: a verified GuardDuty finding on a member account's root access key is notify-only with the manual steps, or the key is DELETED through centralized root access (irreversible: AWS's root-task policy cannot deactivate; needs the quarantine role and `root-access-role.yaml`)",
    )
    .from(Ref("RootKeys")),
    text(
        "KILLSWITCH_QUARANTINE_ROLE_ARN",
        "empty = no org quarantine",
        "the Organizations role that attaches the quarantine SCP",
    )
    .from(Ref("QuarantineRoleArn")),
    text(
        "KILLSWITCH_QUARANTINE_EXTERNAL_ID",
        "required with the role",
        "that role's sts:ExternalId",
    )
    .from(Ref("QuarantineExternalId"))
    .secret(),
    text(
        "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN",
        "empty = Identity Center sessions notify-only (with the manual steps)",
        "the Identity Center responder role",
    )
    .from(Ref("IdentityCenterRoleArn")),
    text(
        "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
        "required with the role",
        "that role's sts:ExternalId",
    )
    .from(Ref("IdentityCenterExternalId"))
    .secret(),
    text(
        "KILLSWITCH_IDENTITY_CENTER_REGION",
        "the function's Region",
        "Identity Center's home Region",
    )
    .from(Ref("IdentityCenterRegion")),
    text(
        "KILLSWITCH_IDENTITY_CENTER_POLICY",
        "`KillSwitchDeny`",
        "the deny policy every permission set references",
    )
    .from(Ref("IdentityCenterPolicyName")),
    flag(
        "KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS",
        false,
        "also remove the user's direct assignment",
    )
    .from(Literal("!If [RemovesAssignments, \"true\", \"\"]")),
    text(
        "KILLSWITCH_ACCEPTS",
        "`all`",
        "`findings`, `manual` or `all`: which payloads this function answers (the other kind is refused before any call)",
    )
    .from(PerFunction(&[
        ("KillSwitchFunction", "findings"),
        ("ManualFunction", "manual"),
    ])),
    text(
        "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN",
        "empty",
        "the operators' Restore role (restore only)",
    ),
];

/// The declared setting of this name. Every name the parser asks for is declared (a unit test
/// parses each one).
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

//! Which CloudTrail management events an attacker's hand shows in, by service: one table, read
//! top to bottom, the first rule that matches wins.

use super::Category;

/// Event names of one service that fall in one category.
struct Rule {
    /// The event source without `.amazonaws.com`.
    service: &'static str,
    category: Category,
    /// Lambda's CloudTrail names carry an API version suffix (`CreateFunction20150331`): its
    /// names match by prefix.
    by_prefix: bool,
    names: &'static [&'static str],
}

impl Rule {
    fn matches(&self, service: &str, name: &str) -> bool {
        self.service == service
            && if self.by_prefix {
                self.names.iter().any(|p| name.starts_with(p))
            } else {
                self.names.contains(&name)
            }
    }
}

const fn exact(service: &'static str, category: Category, names: &'static [&'static str]) -> Rule {
    Rule {
        service,
        category,
        by_prefix: false,
        names,
    }
}

const fn prefix(service: &'static str, category: Category, names: &'static [&'static str]) -> Rule {
    Rule {
        service,
        category,
        by_prefix: true,
        names,
    }
}

use Category::{AgainstResponse, CredentialMinting, DefenceEvasion, Impact, Persistence};

const RULES: &[Rule] = &[
    exact(
        "iam",
        Persistence,
        &[
            "CreateAccessKey",
            "CreateUser",
            "CreateLoginProfile",
            "UpdateLoginProfile",
            "AttachUserPolicy",
            "AttachRolePolicy",
            "AttachGroupPolicy",
            "PutUserPolicy",
            "PutRolePolicy",
            "PutGroupPolicy",
            "CreateRole",
            "UpdateAssumeRolePolicy",
            "CreatePolicyVersion",
            "SetDefaultPolicyVersion",
            "CreatePolicy",
            "AddUserToGroup",
            "UpdateAccessKey",
            "CreateVirtualMFADevice",
            "EnableMFADevice",
            "CreateServiceSpecificCredential",
            "UploadSSHPublicKey",
            "UploadSigningCertificate",
        ],
    ),
    exact(
        "iam",
        DefenceEvasion,
        &[
            "DeleteUserPolicy",
            "DeleteRolePolicy",
            "DetachUserPolicy",
            "DetachRolePolicy",
        ],
    ),
    exact(
        "sts",
        CredentialMinting,
        &[
            "GetSessionToken",
            "GetFederationToken",
            "AssumeRole",
            "AssumeRoleWithSAML",
            "AssumeRoleWithWebIdentity",
            "AssumeRoot",
        ],
    ),
    exact(
        "cloudtrail",
        AgainstResponse,
        &[
            "StopLogging",
            "DeleteTrail",
            "UpdateTrail",
            "PutEventSelectors",
            "PutInsightSelectors",
            "DeleteEventDataStore",
            "StopEventDataStoreIngestion",
        ],
    ),
    exact(
        "guardduty",
        AgainstResponse,
        &[
            "DeleteDetector",
            "UpdateDetector",
            "DisassociateFromMasterAccount",
            "DisassociateFromAdministratorAccount",
            "DeleteMembers",
            "CreateIPSet",
            "UpdateIPSet",
            "CreateFilter",
            "UpdateFilter",
            "ArchiveFindings",
            "UpdateFindingsFeedback",
            "DeletePublishingDestination",
        ],
    ),
    // This function and how it is triggered, alerted and keyed.
    prefix(
        "lambda",
        AgainstResponse,
        &[
            "DeleteFunction",
            "UpdateFunctionConfiguration",
            "UpdateFunctionCode",
            "PutFunctionConcurrency",
            "DeleteFunctionConcurrency",
            "RemovePermission",
            "DeleteEventSourceMapping",
            "UpdateEventSourceMapping",
            "PutFunctionEventInvokeConfig",
            "DeleteFunctionEventInvokeConfig",
        ],
    ),
    exact(
        "events",
        AgainstResponse,
        &["DisableRule", "DeleteRule", "RemoveTargets", "PutRule"],
    ),
    exact(
        "sns",
        AgainstResponse,
        &[
            "Unsubscribe",
            "DeleteTopic",
            "SetTopicAttributes",
            "SetSubscriptionAttributes",
            "RemovePermission",
        ],
    ),
    exact(
        "sqs",
        AgainstResponse,
        &["DeleteQueue", "PurgeQueue", "SetQueueAttributes"],
    ),
    exact(
        "kms",
        AgainstResponse,
        &[
            "DisableKey",
            "ScheduleKeyDeletion",
            "PutKeyPolicy",
            "RevokeGrant",
            "RetireGrant",
        ],
    ),
    exact(
        "dynamodb",
        AgainstResponse,
        &["DeleteTable", "UpdateTimeToLive"],
    ),
    exact(
        "securityhub",
        DefenceEvasion,
        &[
            "DisableSecurityHub",
            "BatchDisableStandards",
            "DisableImportFindingsForProduct",
        ],
    ),
    exact(
        "config",
        DefenceEvasion,
        &[
            "StopConfigurationRecorder",
            "DeleteConfigurationRecorder",
            "DeleteDeliveryChannel",
        ],
    ),
    exact("ec2", DefenceEvasion, &["DeleteFlowLogs"]),
    exact(
        "logs",
        DefenceEvasion,
        &["DeleteLogGroup", "DeleteLogStream"],
    ),
    exact(
        "ec2",
        Impact,
        &[
            "RunInstances",
            "RequestSpotInstances",
            "CreateFleet",
            "RequestSpotFleet",
        ],
    ),
    prefix("lambda", Impact, &["CreateFunction", "AddPermission"]),
    exact(
        "s3",
        Impact,
        &[
            "CreateBucket",
            "PutBucketPolicy",
            "PutBucketAcl",
            "DeleteBucket",
            "DeleteBucketPolicy",
            "PutBucketPublicAccessBlock",
            "DeleteBucketPublicAccessBlock",
            "PutBucketReplication",
        ],
    ),
    exact(
        "bedrock",
        Impact,
        &[
            "InvokeModel",
            "InvokeModelWithResponseStream",
            "Converse",
            "ConverseStream",
            "PutUseCaseForModelAccess",
            "CreateFoundationModelAgreement",
        ],
    ),
    exact(
        "sagemaker",
        Impact,
        &[
            "CreateNotebookInstance",
            "CreateTrainingJob",
            "CreateEndpoint",
        ],
    ),
];

/// Classifies an event by source and name. Lambda's CloudTrail names carry an API version
/// suffix (`CreateFunction20150331`), so those match by prefix.
pub fn categorize(source: &str, name: &str) -> Option<Category> {
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    RULES
        .iter()
        .find(|rule| rule.matches(service, name))
        .map(|rule| rule.category)
}

//! `IdentityCenterAdmin` and `Directory` over IAM Identity Center (sso-admin) and its identity
//! store, through the Identity Center role.

use std::time::Duration;

use aws_sdk_identitystore::types::{AlternateIdentifier, UniqueAttribute};
use aws_sdk_ssoadmin::types::{
    AccountAssignmentOperationStatus, PrincipalType, StatusValues, TargetType,
};

use super::{AwsClients, aws_err, is_failure};
use crate::error::{AwsFailure, Error};
use crate::ports::{Assignment, Directory, IdentityCenterAdmin, Instance};

/// How long an assignment change may take before it is reported as not done.
const STATUS_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct IdcClient {
    sso: aws_sdk_ssoadmin::Client,
    store: aws_sdk_identitystore::Client,
}

impl IdentityCenterAdmin for AwsClients {
    type Directory = IdcClient;

    async fn enter_identity_center(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
        region: Option<&str>,
    ) -> Result<IdcClient, Error> {
        let (sdk, _) = self.assume(role_arn, external_id, session_name).await?;
        let region = region
            .map(|r| aws_config::Region::new(r.to_owned()))
            .or_else(|| sdk.region().cloned());
        let mut sso = aws_sdk_ssoadmin::config::Builder::from(&sdk);
        sso.set_region(region.clone());
        let mut store = aws_sdk_identitystore::config::Builder::from(&sdk);
        store.set_region(region);
        let (sso, store) = (sso.build(), store.build());
        Ok(IdcClient {
            sso: aws_sdk_ssoadmin::Client::from_conf(sso),
            store: aws_sdk_identitystore::Client::from_conf(store),
        })
    }
}

fn missing(op: &'static str, what: &str) -> Error {
    Error::Aws {
        op,
        code: None,
        source: format!("response without {what}").into(),
    }
}

impl Directory for IdcClient {
    async fn instance(&self) -> Result<Instance, Error> {
        let out = self
            .sso
            .list_instances()
            .send()
            .await
            .map_err(aws_err("sso:ListInstances"))?;
        // One organization instance at most; account instances cannot hold permission sets.
        out.instances()
            .iter()
            .find_map(|i| {
                Some(Instance {
                    arn: i.instance_arn()?.to_owned(),
                    identity_store_id: i.identity_store_id()?.to_owned(),
                })
            })
            .ok_or_else(|| missing("sso:ListInstances", "an Identity Center instance"))
    }

    async fn user_id(
        &self,
        identity_store: &str,
        user_name: &str,
    ) -> Result<Option<String>, Error> {
        let by_name = UniqueAttribute::builder()
            .attribute_path("userName")
            .attribute_value(aws_smithy_types::Document::String(user_name.to_owned()))
            .build()
            .map_err(|e| Error::BadEvent(e.to_string()))?;
        match self
            .store
            .get_user_id()
            .identity_store_id(identity_store)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(by_name))
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.user_id)),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(None),
            Err(e) => Err(aws_err("identitystore:GetUserId")(e)),
        }
    }

    async fn permission_set(&self, instance: &str, name: &str) -> Result<Option<String>, Error> {
        let mut pages = self
            .sso
            .list_permission_sets()
            .instance_arn(instance)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_err("sso:ListPermissionSets"))?;
            for arn in page.permission_sets() {
                let out = self
                    .sso
                    .describe_permission_set()
                    .instance_arn(instance)
                    .permission_set_arn(arn)
                    .send()
                    .await
                    .map_err(aws_err("sso:DescribePermissionSet"))?;
                if out.permission_set().and_then(|p| p.name()) == Some(name) {
                    return Ok(Some(arn.clone()));
                }
            }
        }
        Ok(None)
    }

    async fn assignments(
        &self,
        instance: &str,
        account: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, Error> {
        let mut pages = self
            .sso
            .list_account_assignments()
            .instance_arn(instance)
            .account_id(account)
            .permission_set_arn(permission_set)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_err("sso:ListAccountAssignments"))?;
            out.extend(page.account_assignments().iter().filter_map(|a| {
                Some(Assignment {
                    principal_type: a.principal_type()?.as_str().to_owned(),
                    principal_id: a.principal_id()?.to_owned(),
                })
            }));
        }
        Ok(out)
    }

    async fn delete_assignment(
        &self,
        instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error> {
        let out = self
            .sso
            .delete_account_assignment()
            .instance_arn(instance)
            .target_id(account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(permission_set)
            .principal_type(PrincipalType::from(who.principal_type.as_str()))
            .principal_id(&who.principal_id)
            .send()
            .await
            .map_err(aws_err("sso:DeleteAccountAssignment"))?;
        let status = out.account_assignment_deletion_status.ok_or_else(|| {
            missing(
                "sso:DeleteAccountAssignment",
                "AccountAssignmentDeletionStatus",
            )
        })?;
        wait_for(
            "sso:DeleteAccountAssignment",
            status,
            |request| async move {
                self.sso
                    .describe_account_assignment_deletion_status()
                    .instance_arn(instance)
                    .account_assignment_deletion_request_id(request)
                    .send()
                    .await
                    .map(|out| out.account_assignment_deletion_status)
                    .map_err(aws_err("sso:DescribeAccountAssignmentDeletionStatus"))
            },
        )
        .await
    }

    async fn create_assignment(
        &self,
        instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error> {
        let out = self
            .sso
            .create_account_assignment()
            .instance_arn(instance)
            .target_id(account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(permission_set)
            .principal_type(PrincipalType::from(who.principal_type.as_str()))
            .principal_id(&who.principal_id)
            .send()
            .await
            .map_err(aws_err("sso:CreateAccountAssignment"))?;
        let status = out.account_assignment_creation_status.ok_or_else(|| {
            missing(
                "sso:CreateAccountAssignment",
                "AccountAssignmentCreationStatus",
            )
        })?;
        wait_for(
            "sso:CreateAccountAssignment",
            status,
            |request| async move {
                self.sso
                    .describe_account_assignment_creation_status()
                    .instance_arn(instance)
                    .account_assignment_creation_request_id(request)
                    .send()
                    .await
                    .map(|out| out.account_assignment_creation_status)
                    .map_err(aws_err("sso:DescribeAccountAssignmentCreationStatus"))
            },
        )
        .await
    }
}

/// Polls an assignment change (`Describe…Status` by its request ID) until it leaves IN_PROGRESS
/// or `STATUS_WAIT` passes.
async fn wait_for<F, Fut>(
    op: &'static str,
    first: AccountAssignmentOperationStatus,
    describe: F,
) -> Result<(), Error>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<AccountAssignmentOperationStatus>, Error>>,
{
    let state_of = |s: Option<&AccountAssignmentOperationStatus>| {
        (
            s.and_then(|s| s.status().cloned()),
            s.and_then(|s| s.failure_reason().map(str::to_owned)),
        )
    };
    let mut state = state_of(Some(&first));
    let request = first.request_id().map(str::to_owned);
    let until = tokio::time::Instant::now() + STATUS_WAIT;
    while state.0 == Some(StatusValues::InProgress) && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(request) = &request else { break };
        state = state_of(describe(request.clone()).await?.as_ref());
    }
    settled(op, state)
}

/// The end state of an assignment change: only SUCCEEDED is done.
fn settled(
    op: &'static str,
    (status, reason): (Option<StatusValues>, Option<String>),
) -> Result<(), Error> {
    match status {
        Some(StatusValues::Succeeded) => Ok(()),
        Some(StatusValues::InProgress) => Err(Error::Aws {
            op,
            code: None,
            source: format!("still IN_PROGRESS after {} s", STATUS_WAIT.as_secs()).into(),
        }),
        other => Err(Error::Aws {
            op,
            code: None,
            source: format!(
                "status {}: {}",
                other.as_ref().map_or("missing", |s| s.as_str()),
                reason.unwrap_or_default()
            )
            .into(),
        }),
    }
}

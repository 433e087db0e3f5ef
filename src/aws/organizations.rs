//! `Organization` and `ServiceControlPolicies` over AWS Organizations, through the quarantine
//! role.

use aws_sdk_organizations::types::{PolicyType, Tag};

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::{Organization, Scp, ServiceControlPolicies};

/// The tag every quarantine policy carries: the quarantine role may update, detach and delete
/// only policies with it (`quarantine-role.yaml`).
pub const TAG_KEY: &str = "killswitch";
pub const TAG_VALUE: &str = "quarantine";

/// Organizations through the quarantine role's session.
#[derive(Clone, Debug)]
pub struct OrgClient {
    organizations: aws_sdk_organizations::Client,
}

impl OrgClient {
    pub fn new(organizations: aws_sdk_organizations::Client) -> Self {
        Self { organizations }
    }
}

impl Organization for AwsClients {
    type Org = OrgClient;

    async fn enter_organization(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<OrgClient, Error> {
        let (sdk, _) = self.assume(role_arn, external_id, session_name).await?;
        // Organizations' endpoint is in us-east-1 (the aws partition's global Region).
        let config = aws_sdk_organizations::config::Builder::from(&sdk)
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Ok(OrgClient::new(aws_sdk_organizations::Client::from_conf(
            config,
        )))
    }
}

fn missing(op: &'static str, what: &str) -> Error {
    Error::Aws {
        op,
        code: None,
        source: format!("response without {what}").into(),
    }
}

impl ServiceControlPolicies for OrgClient {
    async fn management_account(&self) -> Result<String, Error> {
        let out = self
            .organizations
            .describe_organization()
            .send()
            .await
            .map_err(aws_err("organizations:DescribeOrganization"))?;
        out.organization()
            .and_then(|o| o.master_account_id())
            .map(str::to_owned)
            .ok_or_else(|| missing("organizations:DescribeOrganization", "MasterAccountId"))
    }

    async fn find_policy(&self, name: &str) -> Result<Option<Scp>, Error> {
        let mut pages = self
            .organizations
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send();
        let mut id = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_err("organizations:ListPolicies"))?;
            if let Some(p) = page.policies().iter().find(|p| p.name() == Some(name)) {
                id = p.id().map(str::to_owned);
                break;
            }
        }
        let Some(id) = id else { return Ok(None) };
        let out = self
            .organizations
            .describe_policy()
            .policy_id(&id)
            .send()
            .await
            .map_err(aws_err("organizations:DescribePolicy"))?;
        let content = out
            .policy()
            .and_then(|p| p.content())
            .ok_or_else(|| missing("organizations:DescribePolicy", "Content"))?;
        Ok(Some(Scp {
            id,
            content: content.to_owned(),
        }))
    }

    async fn create_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, Error> {
        let tag = Tag::builder()
            .key(TAG_KEY)
            .value(TAG_VALUE)
            .build()
            .map_err(|e| Error::BadEvent(format!("tag: {e}")))?;
        let out = self
            .organizations
            .create_policy()
            .name(name)
            .description(description)
            .content(content)
            .r#type(PolicyType::ServiceControlPolicy)
            .tags(tag)
            .send()
            .await
            .map_err(aws_err("organizations:CreatePolicy"))?;
        out.policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .map(str::to_owned)
            .ok_or_else(|| missing("organizations:CreatePolicy", "PolicySummary.Id"))
    }

    async fn update_policy(&self, id: &str, content: &str) -> Result<(), Error> {
        self.organizations
            .update_policy()
            .policy_id(id)
            .content(content)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("organizations:UpdatePolicy"))
    }

    async fn policies_for(&self, account: &str) -> Result<Vec<String>, Error> {
        let mut pages = self
            .organizations
            .list_policies_for_target()
            .target_id(account)
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_err("organizations:ListPoliciesForTarget"))?;
            ids.extend(
                page.policies()
                    .iter()
                    .filter_map(|p| p.id().map(str::to_owned)),
            );
        }
        Ok(ids)
    }

    async fn attach_policy(&self, id: &str, account: &str) -> Result<(), Error> {
        self.organizations
            .attach_policy()
            .policy_id(id)
            .target_id(account)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("organizations:AttachPolicy"))
    }

    async fn detach_policy(&self, id: &str, account: &str) -> Result<(), Error> {
        self.organizations
            .detach_policy()
            .policy_id(id)
            .target_id(account)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("organizations:DetachPolicy"))
    }

    async fn delete_policy(&self, id: &str) -> Result<(), Error> {
        self.organizations
            .delete_policy()
            .policy_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("organizations:DeletePolicy"))
    }
}

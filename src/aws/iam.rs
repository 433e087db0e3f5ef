//! `Identity` over IAM (and STS for the account check).

use aws_sdk_iam::types::StatusType;
use percent_encoding::percent_decode_str;

use super::{AwsClients, aws_err, is_failure, to_chrono};
use crate::error::{AwsFailure, Error};
use crate::incident::{AccessKeyId, AccountId};
use chrono::{DateTime, Utc};

use crate::ports::{
    Identity, KeyChange, KeyInfo, KeyStatus, KeyUsage, MFA_DEVICE, OtherCredential, PolicyTarget,
    PolicyVersion, VersionInfo,
};

/// `ListAccessKeys`' answer as the ports see it (a user's keys, or the root user's).
pub(super) fn key_infos(listed: &[aws_sdk_iam::types::AccessKeyMetadata]) -> Vec<KeyInfo> {
    listed
        .iter()
        .filter_map(|m| {
            Some(KeyInfo {
                id: AccessKeyId::parse(m.access_key_id()?).ok()?,
                status: key_status(m.status()),
                created: m.create_date().and_then(to_chrono),
            })
        })
        .collect()
}

fn key_status(status: Option<&StatusType>) -> KeyStatus {
    match status {
        Some(StatusType::Active) => KeyStatus::Active,
        Some(StatusType::Inactive) => KeyStatus::Inactive,
        _ => KeyStatus::Other,
    }
}

impl Identity for AwsClients {
    async fn caller(&self) -> Result<(AccountId, String), Error> {
        let (account, arn) = self.caller_identity().await?;
        Ok((AccountId::parse(&account)?, arn))
    }

    async fn key_account(&self, key: &AccessKeyId) -> Result<AccountId, Error> {
        let out = self
            .sts
            .get_access_key_info()
            .access_key_id(key.as_str())
            .send()
            .await
            .map_err(aws_err("sts:GetAccessKeyInfo"))?;
        AccountId::parse(out.account().unwrap_or_default()).map_err(|e| Error::Aws {
            op: "sts:GetAccessKeyInfo",
            code: None,
            source: e.to_string().into(),
        })
    }

    async fn key_usage(&self, key: &AccessKeyId) -> Result<Option<KeyUsage>, Error> {
        let out = match self
            .iam
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_failure(&e, AwsFailure::NotFound) => return Ok(None),
            Err(e) => return Err(aws_err("iam:GetAccessKeyLastUsed")(e)),
        };
        let Some(user_name) = out.user_name().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let used = out.access_key_last_used();
        let known = |s: &str| (!s.is_empty() && s != "N/A").then(|| s.to_owned());
        Ok(Some(KeyUsage {
            user_name: user_name.to_owned(),
            last_used: used.and_then(|u| u.last_used_date()).and_then(to_chrono),
            region: used.and_then(|u| known(u.region())),
            service: used.and_then(|u| known(u.service_name())),
        }))
    }

    async fn key_status(&self, user: &str, key: &AccessKeyId) -> Result<Option<KeyStatus>, Error> {
        let out = match self.iam.list_access_keys().user_name(user).send().await {
            Ok(out) => out,
            Err(e) if is_failure(&e, AwsFailure::NotFound) => return Ok(None),
            Err(e) => return Err(aws_err("iam:ListAccessKeys")(e)),
        };
        Ok(out
            .access_key_metadata()
            .iter()
            .find(|m| m.access_key_id() == Some(key.as_str()))
            .map(|m| key_status(m.status())))
    }

    async fn deactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<KeyChange, Error> {
        // UserName is explicit: with temporary credentials IAM would otherwise act on the caller.
        match self
            .iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key.as_str())
            .status(StatusType::Inactive)
            .send()
            .await
        {
            Ok(_) => Ok(KeyChange::Deactivated),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(KeyChange::NotFound),
            Err(e) => Err(aws_err("iam:UpdateAccessKey")(e)),
        }
    }

    async fn read_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
    ) -> Result<Option<String>, Error> {
        let encoded = match target {
            PolicyTarget::User(user) => {
                match self
                    .iam
                    .get_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .send()
                    .await
                {
                    Ok(out) => out.policy_document,
                    Err(e) if is_failure(&e, AwsFailure::NotFound) => return Ok(None),
                    Err(e) => return Err(aws_err("iam:GetUserPolicy")(e)),
                }
            }
            PolicyTarget::Role(role) => {
                match self
                    .iam
                    .get_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await
                {
                    Ok(out) => out.policy_document,
                    Err(e) if is_failure(&e, AwsFailure::NotFound) => return Ok(None),
                    Err(e) => return Err(aws_err("iam:GetRolePolicy")(e)),
                }
            }
        };
        // IAM returns policy documents URL-encoded (RFC 3986).
        Ok(Some(
            percent_decode_str(&encoded)
                .decode_utf8_lossy()
                .into_owned(),
        ))
    }

    async fn put_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
        document: &str,
    ) -> Result<(), Error> {
        match target {
            PolicyTarget::User(user) => self
                .iam
                .put_user_policy()
                .user_name(user)
                .policy_name(name)
                .policy_document(document)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:PutUserPolicy")),
            PolicyTarget::Role(role) => self
                .iam
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(document)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:PutRolePolicy")),
        }
    }

    async fn role_id(&self, role: &str) -> Result<Option<String>, Error> {
        self.iam_role_id(role).await
    }

    async fn attach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.iam
            .attach_user_policy()
            .user_name(user)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("iam:AttachUserPolicy"))
    }

    async fn managed_policies(&self, user: &str) -> Result<Vec<String>, Error> {
        let out = self
            .iam
            .list_attached_user_policies()
            .user_name(user)
            .max_items(100)
            .send()
            .await
            .map_err(aws_err("iam:ListAttachedUserPolicies"))?;
        Ok(out
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect())
    }

    async fn user_keys(&self, user: &str) -> Result<Vec<KeyInfo>, Error> {
        let out = self
            .iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(aws_err("iam:ListAccessKeys"))?;
        Ok(key_infos(out.access_key_metadata()))
    }

    async fn login_profile(&self, user: &str) -> Result<Option<DateTime<Utc>>, Error> {
        match self.iam.get_login_profile().user_name(user).send().await {
            Ok(out) => Ok(out
                .login_profile()
                .and_then(|p| to_chrono(p.create_date()))
                .or(Some(DateTime::<Utc>::MIN_UTC))),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(None),
            Err(e) => Err(aws_err("iam:GetLoginProfile")(e)),
        }
    }

    async fn other_credentials(&self, user: &str) -> Result<Vec<OtherCredential>, Error> {
        let active = |s: Option<&StatusType>| matches!(s, Some(StatusType::Active));
        let (service, ssh, certs, mfa) = tokio::join!(
            self.iam
                .list_service_specific_credentials()
                .user_name(user)
                .send(),
            self.iam.list_ssh_public_keys().user_name(user).send(),
            self.iam.list_signing_certificates().user_name(user).send(),
            // Up to 8 devices a user: one page.
            self.iam.list_mfa_devices().user_name(user).send()
        );
        let mut out = Vec::new();
        for c in service
            .map_err(aws_err("iam:ListServiceSpecificCredentials"))?
            .service_specific_credentials()
        {
            out.push(OtherCredential {
                kind: "service-specific credential",
                id: format!(
                    "{} ({})",
                    c.service_specific_credential_id(),
                    c.service_name()
                ),
                active: active(Some(c.status())),
                created: to_chrono(c.create_date()),
            });
        }
        for k in ssh
            .map_err(aws_err("iam:ListSSHPublicKeys"))?
            .ssh_public_keys()
        {
            out.push(OtherCredential {
                kind: "SSH public key",
                id: k.ssh_public_key_id().to_owned(),
                active: active(Some(k.status())),
                created: to_chrono(k.upload_date()),
            });
        }
        for c in certs
            .map_err(aws_err("iam:ListSigningCertificates"))?
            .certificates()
        {
            out.push(OtherCredential {
                kind: "signing certificate",
                id: c.certificate_id().to_owned(),
                active: active(Some(c.status())),
                created: c.upload_date().and_then(to_chrono),
            });
        }
        for d in mfa.map_err(aws_err("iam:ListMFADevices"))?.mfa_devices() {
            out.push(OtherCredential {
                kind: MFA_DEVICE,
                id: d.serial_number().to_owned(),
                active: true,
                created: to_chrono(d.enable_date()),
            });
        }
        Ok(out)
    }

    async fn permissions_boundary(&self, user: &str) -> Result<Option<String>, Error> {
        let out = self
            .iam
            .get_user()
            .user_name(user)
            .send()
            .await
            .map_err(aws_err("iam:GetUser"))?;
        Ok(out
            .user()
            .and_then(|u| u.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned))
    }

    async fn put_boundary(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.iam
            .put_user_permissions_boundary()
            .user_name(user)
            .permissions_boundary(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("iam:PutUserPermissionsBoundary"))
    }

    async fn policy_default(&self, policy_arn: &str) -> Result<Option<PolicyVersion>, Error> {
        let policy = match self.iam.get_policy().policy_arn(policy_arn).send().await {
            Ok(out) => out.policy,
            Err(e) if is_failure(&e, AwsFailure::NotFound) => return Ok(None),
            Err(e) => return Err(aws_err("iam:GetPolicy")(e)),
        };
        let Some(version) = policy.and_then(|p| p.default_version_id) else {
            return Err(Error::Aws {
                op: "iam:GetPolicy",
                code: None,
                source: "response without DefaultVersionId".into(),
            });
        };
        let out = self
            .iam
            .get_policy_version()
            .policy_arn(policy_arn)
            .version_id(&version)
            .send()
            .await
            .map_err(aws_err("iam:GetPolicyVersion"))?;
        let encoded = out
            .policy_version
            .and_then(|v| v.document)
            .unwrap_or_default();
        Ok(Some(PolicyVersion {
            version,
            document: percent_decode_str(&encoded)
                .decode_utf8_lossy()
                .into_owned(),
        }))
    }

    async fn policy_versions(&self, policy_arn: &str) -> Result<Vec<VersionInfo>, Error> {
        let out = self
            .iam
            .list_policy_versions()
            .policy_arn(policy_arn)
            .max_items(100)
            .send()
            .await
            .map_err(aws_err("iam:ListPolicyVersions"))?;
        Ok(out
            .versions()
            .iter()
            .filter_map(|v| {
                Some(VersionInfo {
                    version: v.version_id()?.to_owned(),
                    default: v.is_default_version(),
                    created: v.create_date().and_then(to_chrono),
                })
            })
            .collect())
    }

    async fn create_policy_version(
        &self,
        policy_arn: &str,
        document: &str,
    ) -> Result<String, Error> {
        let out = self
            .iam
            .create_policy_version()
            .policy_arn(policy_arn)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(aws_err("iam:CreatePolicyVersion"))?;
        Ok(out
            .policy_version
            .and_then(|v| v.version_id)
            .unwrap_or_default())
    }

    async fn delete_policy_version(&self, policy_arn: &str, version: &str) -> Result<(), Error> {
        self.iam
            .delete_policy_version()
            .policy_arn(policy_arn)
            .version_id(version)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("iam:DeletePolicyVersion"))
    }

    async fn role_managed_policies(&self, role: &str) -> Result<Vec<String>, Error> {
        let out = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .max_items(100)
            .send()
            .await
            .map_err(aws_err("iam:ListAttachedRolePolicies"))?;
        Ok(out
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect())
    }

    async fn create_managed(&self, path: &str, name: &str, doc: &str) -> Result<String, Error> {
        let out = self.iam.create_policy().path(path).policy_name(name);
        let out = out.policy_document(doc).send().await;
        let arn = out.map_err(aws_err("iam:CreatePolicy"))?.policy;
        Ok(arn.and_then(|p| p.arn).unwrap_or_default())
    }

    async fn attach_role_managed(&self, role: &str, policy_arn: &str) -> Result<(), Error> {
        self.iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("iam:AttachRolePolicy"))
    }

    async fn identity_center_roles(&self) -> Result<Vec<String>, Error> {
        let mut pages = self
            .iam
            .list_roles()
            .path_prefix("/aws-reserved/sso.amazonaws.com/")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_err("iam:ListRoles"))?;
            out.extend(page.roles().iter().map(|r| r.role_name().to_owned()));
        }
        Ok(out)
    }

    async fn tag(&self, target: &PolicyTarget, key: &str, value: &str) -> Result<(), Error> {
        self.iam_tag(target, key, value).await
    }

    async fn tag_value(&self, target: &PolicyTarget, key: &str) -> Result<Option<String>, Error> {
        self.iam_tag_value(target, key).await
    }

    async fn remove_login_profile(&self, user: &str) -> Result<bool, Error> {
        match self.iam.delete_login_profile().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(false),
            Err(e) => Err(aws_err("iam:DeleteLoginProfile")(e)),
        }
    }
}

impl AwsClients {
    pub(crate) async fn iam_role_id(&self, role: &str) -> Result<Option<String>, Error> {
        match self.iam.get_role().role_name(role).send().await {
            Ok(out) => Ok(out.role().map(|r| r.role_id().to_owned())),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(None),
            Err(e) => Err(aws_err("iam:GetRole")(e)),
        }
    }
}

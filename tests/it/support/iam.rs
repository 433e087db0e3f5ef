//! IAM and STS as the fake plays them: the `Identity` port (containment's reads and writes) and
//! the `Operator` port (what a restore undoes).

use chrono::{DateTime, Utc};
use killswitch::error::Error;
use killswitch::incident::{AccessKeyId, AccountId};
use killswitch::ports::{
    Identity, KeyChange, KeyInfo, KeyStatus, KeyUsage, Operator, OtherCredential, PolicyTarget,
    PolicyVersion, VersionInfo,
};

use super::{ACCOUNT, FakeCloud, target_key};

impl Identity for FakeCloud {
    async fn caller(&self) -> Result<(AccountId, String), Error> {
        self.rtt().await;
        let s = self.enter("sts:GetCallerIdentity", "")?;
        let account = s.account.clone().unwrap_or_else(|| ACCOUNT.into());
        Ok((
            AccountId::parse(&account).unwrap(),
            format!("arn:aws:sts::{account}:assumed-role/killswitch-fn-role/killswitch"),
        ))
    }

    async fn key_account(&self, key: &AccessKeyId) -> Result<AccountId, Error> {
        self.rtt().await;
        let s = self.enter("sts:GetAccessKeyInfo", key.as_str())?;
        let own = s.account.clone().unwrap_or_else(|| ACCOUNT.into());
        Ok(AccountId::parse(s.key_account.get(key.as_str()).unwrap_or(&own)).unwrap())
    }

    async fn key_usage(&self, key: &AccessKeyId) -> Result<Option<KeyUsage>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetAccessKeyLastUsed", key.as_str())?;
        Ok(s.owners.get(key.as_str()).map(|(user, region)| KeyUsage {
            user_name: user.clone(),
            last_used: None,
            region: region.clone(),
            service: None,
        }))
    }

    async fn key_status(&self, user: &str, key: &AccessKeyId) -> Result<Option<KeyStatus>, Error> {
        self.rtt().await;
        // Let concurrent deliveries interleave at every call, as they do against IAM.
        tokio::task::yield_now().await;
        let mut s = self.enter("iam:ListAccessKeys", user)?;
        s.key_reads += 1;
        if s.tamper_on_key_read == Some(s.key_reads)
            || s.tamper_from_key_read.is_some_and(|n| s.key_reads >= n)
        {
            // The attacker, still holding valid credentials for a moment, undoes containment.
            for ((u, _), status) in s.keys.iter_mut() {
                if u == user {
                    *status = KeyStatus::Active;
                }
            }
            s.policies.retain(|(t, _), _| t != &format!("user/{user}"));
            s.tampered.insert(user.to_owned());
            s.tampered_at.push(tokio::time::Instant::now());
        }
        Ok(s.keys.get(&(user.into(), key.as_str().into())).copied())
    }

    async fn deactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<KeyChange, Error> {
        self.rtt().await;
        // Let concurrent deliveries interleave at every call, as they do against IAM.
        tokio::task::yield_now().await;
        let mut s = self.enter("iam:UpdateAccessKey", format!("{user} {key}"))?;
        match s.keys.get_mut(&(user.into(), key.as_str().into())) {
            Some(status) => {
                *status = KeyStatus::Inactive;
                Ok(KeyChange::Deactivated)
            }
            None => Ok(KeyChange::NotFound),
        }
    }

    async fn read_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
    ) -> Result<Option<String>, Error> {
        self.rtt().await;
        tokio::task::yield_now().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:GetUserPolicy",
            PolicyTarget::Role(_) => "iam:GetRolePolicy",
        };
        let s = self.enter(action, target_key(target))?;
        Ok(s.policies.get(&(target_key(target), name.into())).cloned())
    }

    async fn put_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
        document: &str,
    ) -> Result<(), Error> {
        self.rtt().await;
        tokio::task::yield_now().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:PutUserPolicy",
            PolicyTarget::Role(_) => "iam:PutRolePolicy",
        };
        let mut s = self.enter(action, format!("{} {name}", target_key(target)))?;
        // A role's inline policies share 10,240 non-whitespace characters, as in IAM.
        if let PolicyTarget::Role(_) = target {
            let size = |d: &str| d.chars().filter(|c| !c.is_whitespace()).count();
            let others: usize = s
                .policies
                .iter()
                .filter(|((t, n), _)| t == &target_key(target) && n != name)
                .map(|(_, d)| size(d))
                .sum();
            if others + size(document) > 10_240 {
                return Err(iam_error(
                    "iam:PutRolePolicy",
                    "LimitExceeded",
                    "Maximum policy size of 10240 bytes exceeded for role",
                ));
            }
        }
        s.policies
            .insert((target_key(target), name.into()), document.into());
        Ok(())
    }

    async fn role_id(&self, role: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetRole", role)?;
        Ok(s.role_ids.get(role).cloned())
    }

    async fn attach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:AttachUserPolicy", format!("{user} {policy_arn}"))?;
        let list = s.attached.entry(user.into()).or_default();
        if !list.iter().any(|a| a == policy_arn) {
            list.push(policy_arn.into());
        }
        Ok(())
    }

    async fn managed_policies(&self, user: &str) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListAttachedUserPolicies", user)?;
        Ok(s.attached.get(user).cloned().unwrap_or_default())
    }

    async fn user_keys(&self, user: &str) -> Result<Vec<KeyInfo>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListAccessKeys", user)?;
        let mut keys: Vec<KeyInfo> = s
            .keys
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|((u, k), status)| KeyInfo {
                id: AccessKeyId::parse(k).unwrap(),
                status: *status,
                created: Some(
                    s.key_created
                        .get(&(u.clone(), k.clone()))
                        .copied()
                        .unwrap_or(DateTime::UNIX_EPOCH),
                ),
            })
            .collect();
        keys.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        // A user nothing is known of does not exist, as IAM answers for a deleted one.
        let known = !keys.is_empty()
            || s.policies.keys().any(|(t, _)| t == &format!("user/{user}"))
            || s.attached.contains_key(user)
            || s.login_profiles.contains_key(user)
            || s.boundaries.contains_key(user)
            || s.other_credentials.contains_key(user);
        if !known {
            return Err(Error::Aws {
                op: "iam:ListAccessKeys",
                code: Some("NoSuchEntity".into()),
                source: format!("The user with name {user} cannot be found.").into(),
            });
        }
        Ok(keys)
    }

    async fn login_profile(&self, user: &str) -> Result<Option<DateTime<Utc>>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetLoginProfile", user)?;
        Ok(s.login_profiles.get(user).copied())
    }

    async fn other_credentials(&self, user: &str) -> Result<Vec<OtherCredential>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListServiceSpecificCredentials", user)?;
        Ok(s.other_credentials.get(user).cloned().unwrap_or_default())
    }

    async fn permissions_boundary(&self, user: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetUser", user)?;
        Ok(s.boundaries.get(user).cloned())
    }

    async fn put_boundary(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter(
            "iam:PutUserPermissionsBoundary",
            format!("{user} {policy_arn}"),
        )?;
        s.boundaries.insert(user.into(), policy_arn.into());
        Ok(())
    }

    async fn policy_default(&self, policy_arn: &str) -> Result<Option<PolicyVersion>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetPolicy", policy_arn)?;
        Ok(s.managed.get(policy_arn).and_then(|versions| {
            versions
                .iter()
                .find(|(_, _, default)| *default)
                .map(|(v, d, _)| PolicyVersion {
                    version: v.clone(),
                    document: d.clone(),
                })
        }))
    }

    async fn policy_versions(&self, policy_arn: &str) -> Result<Vec<VersionInfo>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListPolicyVersions", policy_arn)?;
        let Some(versions) = s.managed.get(policy_arn) else {
            return Err(iam_error(
                "iam:ListPolicyVersions",
                "NoSuchEntity",
                policy_arn,
            ));
        };
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        Ok(versions
            .iter()
            .enumerate()
            .map(|(i, (v, _, default))| VersionInfo {
                version: v.clone(),
                default: *default,
                created: Some(t0 + chrono::TimeDelta::seconds(i as i64)),
            })
            .collect())
    }

    async fn create_policy_version(
        &self,
        policy_arn: &str,
        document: &str,
    ) -> Result<String, Error> {
        self.rtt().await;
        let mut s = self.enter("iam:CreatePolicyVersion", policy_arn)?;
        let size = document.chars().filter(|c| !c.is_whitespace()).count();
        let s = &mut *s;
        let Some(versions) = s.managed.get_mut(policy_arn) else {
            return Err(iam_error(
                "iam:CreatePolicyVersion",
                "NoSuchEntity",
                policy_arn,
            ));
        };
        if versions.len() >= 5 {
            return Err(iam_error(
                "iam:CreatePolicyVersion",
                "LimitExceeded",
                "A managed policy can have up to 5 versions",
            ));
        }
        if size > 6144 {
            return Err(iam_error(
                "iam:CreatePolicyVersion",
                "LimitExceeded",
                "Cannot exceed quota for PolicySize: 6144",
            ));
        }
        let serial = s.managed_serial.entry(policy_arn.into()).or_insert(1);
        *serial += 1;
        let id = format!("v{serial}");
        for v in versions.iter_mut() {
            v.2 = false;
        }
        versions.push((id.clone(), document.into(), true));
        Ok(id)
    }

    async fn delete_policy_version(&self, policy_arn: &str, version: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeletePolicyVersion", format!("{policy_arn} {version}"))?;
        let Some(versions) = s.managed.get_mut(policy_arn) else {
            return Err(iam_error(
                "iam:DeletePolicyVersion",
                "NoSuchEntity",
                policy_arn,
            ));
        };
        match versions.iter().position(|(v, _, _)| v == version) {
            None => Err(iam_error(
                "iam:DeletePolicyVersion",
                "NoSuchEntity",
                version,
            )),
            Some(i) if versions[i].2 => Err(iam_error(
                "iam:DeletePolicyVersion",
                "DeleteConflict",
                "Cannot delete the default version of a policy",
            )),
            Some(i) => {
                versions.remove(i);
                Ok(())
            }
        }
    }

    async fn role_managed_policies(&self, role: &str) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListAttachedRolePolicies", role)?;
        Ok(s.role_attached.get(role).cloned().unwrap_or_default())
    }

    async fn create_managed(&self, path: &str, name: &str, doc: &str) -> Result<String, Error> {
        self.rtt().await;
        let mut s = self.enter("iam:CreatePolicy", format!("{path}{name}"))?;
        let account = s.account.clone().unwrap_or_else(|| ACCOUNT.into());
        let arn = format!("arn:aws:iam::{account}:policy{path}{name}");
        if s.managed.contains_key(&arn) {
            return Err(iam_error("iam:CreatePolicy", "EntityAlreadyExists", &arn));
        }
        s.managed
            .insert(arn.clone(), vec![("v1".into(), doc.into(), true)]);
        s.managed_serial.insert(arn.clone(), 1);
        Ok(arn)
    }

    async fn attach_role_managed(&self, role: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:AttachRolePolicy", format!("{role} {policy_arn}"))?;
        let list = s.role_attached.entry(role.into()).or_default();
        if list.iter().any(|a| a == policy_arn) {
            return Ok(());
        }
        if list.len() >= 10 {
            return Err(iam_error(
                "iam:AttachRolePolicy",
                "LimitExceeded",
                "Cannot exceed quota for PoliciesPerRole: 10",
            ));
        }
        list.push(policy_arn.into());
        Ok(())
    }

    async fn identity_center_roles(&self) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListRoles", "/aws-reserved/sso.amazonaws.com/")?;
        let mut roles: Vec<String> = s
            .role_ids
            .keys()
            .chain(s.role_attached.keys())
            .filter(|r| r.starts_with("AWSReservedSSO_"))
            .cloned()
            .collect();
        roles.sort();
        roles.dedup();
        Ok(roles)
    }

    async fn tag(&self, target: &PolicyTarget, key: &str, value: &str) -> Result<(), Error> {
        self.rtt().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:TagUser",
            PolicyTarget::Role(_) => "iam:TagRole",
        };
        let mut s = self.enter(action, format!("{} {key}={value}", target_key(target)))?;
        s.tags
            .insert((target_key(target), key.to_owned()), value.to_owned());
        Ok(())
    }

    async fn tag_value(&self, target: &PolicyTarget, key: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:ListUserTags",
            PolicyTarget::Role(_) => "iam:ListRoleTags",
        };
        let s = self.enter(action, target_key(target))?;
        Ok(s.tags.get(&(target_key(target), key.to_owned())).cloned())
    }

    async fn remove_login_profile(&self, user: &str) -> Result<bool, Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeleteLoginProfile", user)?;
        Ok(s.login_profiles.remove(user).is_some())
    }
}

impl Operator for FakeCloud {
    async fn untag(&self, target: &PolicyTarget, key: &str) -> Result<(), Error> {
        self.rtt().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:UntagUser",
            PolicyTarget::Role(_) => "iam:UntagRole",
        };
        let mut s = self.enter(action, format!("{} {key}", target_key(target)))?;
        s.tags.remove(&(target_key(target), key.to_owned()));
        Ok(())
    }

    async fn detach_role_managed(&self, role: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DetachRolePolicy", format!("{role} {policy_arn}"))?;
        if let Some(list) = s.role_attached.get_mut(role) {
            list.retain(|a| a != policy_arn);
        }
        Ok(())
    }

    async fn delete_managed_policy(&self, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeletePolicy", policy_arn)?;
        let attached = s.role_attached.values().flatten().any(|a| a == policy_arn);
        if attached {
            return Err(iam_error(
                "iam:DeletePolicy",
                "DeleteConflict",
                "Cannot delete a policy attached to entities",
            ));
        }
        s.managed.remove(policy_arn);
        Ok(())
    }

    async fn delete_boundary(&self, user: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeleteUserPermissionsBoundary", user)?;
        s.boundaries.remove(user);
        Ok(())
    }

    async fn detach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DetachUserPolicy", format!("{user} {policy_arn}"))?;
        if let Some(list) = s.attached.get_mut(user) {
            list.retain(|a| a != policy_arn);
        }
        Ok(())
    }

    async fn reactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:UpdateAccessKey", format!("{user} {key} Active"))?;
        if let Some(status) = s.keys.get_mut(&(user.into(), key.as_str().into())) {
            *status = KeyStatus::Active;
        }
        Ok(())
    }

    async fn delete_policy(&self, target: &PolicyTarget, name: &str) -> Result<(), Error> {
        self.rtt().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:DeleteUserPolicy",
            PolicyTarget::Role(_) => "iam:DeleteRolePolicy",
        };
        let mut s = self.enter(action, target_key(target))?;
        s.policies.remove(&(target_key(target), name.into()));
        Ok(())
    }
}

fn iam_error(op: &'static str, code: &str, reason: &str) -> Error {
    Error::Aws {
        op,
        code: Some(code.into()),
        source: format!("{code}: {reason}").into(),
    }
}

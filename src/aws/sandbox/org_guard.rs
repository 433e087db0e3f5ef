//! The org guard for drills: on the local AWS the drill attaches it from the organization's
//! management account and removes it afterwards; on a real account it only looks for it (the
//! guard is deployed once, before any incident, by `org-guard.yaml`).

use aws_sdk_organizations::types::PolicyType;

use super::{Creds, Sandbox, code_of, drill_err};
use crate::error::Error;

/// What marks an SCP as the guard: its first statement keys on the containment tag.
const GUARD_MARK: &str = "aws:PrincipalTag/killswitch-contained";

impl Sandbox {
    fn organizations_as(&self, creds: &Creds) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.as_holder(creds))
    }

    /// Creates the guard SCP with the management account's credentials and attaches it to
    /// `account`; its policy ID.
    pub async fn attach_guard(
        &self,
        management: &Creds,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<String, Error> {
        let org = self.organizations_as(management);
        let created = org
            .create_policy()
            .name(name)
            .description("killswitch org guard (drill)")
            .r#type(PolicyType::ServiceControlPolicy)
            .content(document)
            .send()
            .await
            .map_err(|e| drill_err("organizations:CreatePolicy", &code_of(&e)))?;
        let id = created
            .policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .ok_or_else(|| drill_err("organizations:CreatePolicy", "no policy ID"))?
            .to_owned();
        org.attach_policy()
            .policy_id(&id)
            .target_id(account)
            .send()
            .await
            .map_err(|e| drill_err("organizations:AttachPolicy", &code_of(&e)))?;
        Ok(id)
    }

    /// Detaches and deletes the guard a drill attached.
    pub async fn remove_guard(
        &self,
        management: &Creds,
        account: &str,
        policy_id: &str,
    ) -> Result<(), Error> {
        let org = self.organizations_as(management);
        org.detach_policy()
            .policy_id(policy_id)
            .target_id(account)
            .send()
            .await
            .map_err(|e| drill_err("organizations:DetachPolicy", &code_of(&e)))?;
        org.delete_policy()
            .policy_id(policy_id)
            .send()
            .await
            .map_err(|e| drill_err("organizations:DeletePolicy", &code_of(&e)))?;
        Ok(())
    }

    /// Whether an SCP carrying the guard applies to `account` (attached to it, an OU above it
    /// or the root), read with the drill's own credentials; the error code when they cannot
    /// read the organization's policies (only the management account or the delegated policy
    /// administrator can).
    pub async fn guard_attached(&self, account: &str) -> Result<bool, String> {
        let org = aws_sdk_organizations::Client::new(&self.sdk);
        let mut target = account.to_owned();
        for _ in 0..8 {
            let listed = org
                .list_policies_for_target()
                .target_id(&target)
                .filter(PolicyType::ServiceControlPolicy)
                .send()
                .await
                .map_err(|e| code_of(&e))?;
            for p in listed.policies() {
                let Some(id) = p.id() else { continue };
                let described = org
                    .describe_policy()
                    .policy_id(id)
                    .send()
                    .await
                    .map_err(|e| code_of(&e))?;
                let content = described
                    .policy()
                    .and_then(|p| p.content())
                    .unwrap_or_default();
                if content.contains(GUARD_MARK) {
                    return Ok(true);
                }
            }
            if target.starts_with("r-") {
                return Ok(false);
            }
            let parents = org
                .list_parents()
                .child_id(&target)
                .send()
                .await
                .map_err(|e| code_of(&e))?;
            match parents.parents().first().and_then(|p| p.id()) {
                Some(parent) => target = parent.to_owned(),
                None => return Ok(false),
            }
        }
        Ok(false)
    }
}

//! Other accounts: member roles (`Accounts`) and the organization's service control policies
//! (`Organization`, `ServiceControlPolicies`).

use killswitch::error::Error;
use killswitch::ports::{Accounts, Entered, Organization, Scp, ServiceControlPolicies};

use super::FakeCloud;

fn org_error(op: &'static str, code: &str, reason: &str) -> Error {
    Error::Aws {
        op,
        code: Some(code.into()),
        source: format!("{code}: {reason}").into(),
    }
}

impl Organization for FakeCloud {
    type Org = FakeCloud;

    async fn enter_organization(
        &self,
        role_arn: &str,
        _external_id: &str,
        _session_name: &str,
    ) -> Result<FakeCloud, Error> {
        self.rtt().await;
        drop(self.enter("sts:AssumeRole", role_arn)?);
        Ok(self.clone())
    }
}

impl ServiceControlPolicies for FakeCloud {
    async fn management_account(&self) -> Result<String, Error> {
        self.rtt().await;
        let s = self.enter("organizations:DescribeOrganization", "")?;
        Ok(s.org_management.clone())
    }

    async fn find_policy(&self, name: &str) -> Result<Option<Scp>, Error> {
        self.rtt().await;
        let s = self.enter("organizations:ListPolicies", name)?;
        Ok(s.scps
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(id, (_, content))| Scp {
                id: id.clone(),
                content: content.clone(),
            }))
    }

    async fn create_policy(
        &self,
        name: &str,
        _description: &str,
        content: &str,
    ) -> Result<String, Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:CreatePolicy", name)?;
        if s.scps.values().any(|(n, _)| n == name) {
            return Err(org_error(
                "organizations:CreatePolicy",
                "DuplicatePolicyException",
                name,
            ));
        }
        if content.len() > 5120 {
            return Err(org_error(
                "organizations:CreatePolicy",
                "ConstraintViolationException",
                "POLICY_CONTENT_LIMIT_EXCEEDED",
            ));
        }
        let id = format!("p-{:08x}", s.scps.len() + 1);
        s.scps.insert(id.clone(), (name.into(), content.into()));
        Ok(id)
    }

    async fn update_policy(&self, id: &str, content: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:UpdatePolicy", id)?;
        if content.len() > 5120 {
            return Err(org_error(
                "organizations:UpdatePolicy",
                "ConstraintViolationException",
                "POLICY_CONTENT_LIMIT_EXCEEDED",
            ));
        }
        match s.scps.get_mut(id) {
            Some(p) => {
                p.1 = content.into();
                Ok(())
            }
            None => Err(org_error(
                "organizations:UpdatePolicy",
                "PolicyNotFoundException",
                id,
            )),
        }
    }

    async fn policies_for(&self, account: &str) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:ListPoliciesForTarget", account)?;
        Ok(s.scp_targets
            .entry(account.into())
            .or_insert_with(|| vec!["p-FullAWSAccess".into()])
            .clone())
    }

    async fn attach_policy(&self, id: &str, account: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:AttachPolicy", format!("{id} {account}"))?;
        let attached = s
            .scp_targets
            .entry(account.into())
            .or_insert_with(|| vec!["p-FullAWSAccess".into()]);
        if attached.iter().any(|a| a == id) {
            return Err(org_error(
                "organizations:AttachPolicy",
                "DuplicatePolicyAttachmentException",
                id,
            ));
        }
        if attached.len() >= 5 {
            return Err(org_error(
                "organizations:AttachPolicy",
                "ConstraintViolationException",
                "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
            ));
        }
        attached.push(id.into());
        Ok(())
    }

    async fn detach_policy(&self, id: &str, account: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:DetachPolicy", format!("{id} {account}"))?;
        if let Some(list) = s.scp_targets.get_mut(account) {
            list.retain(|a| a != id);
        }
        Ok(())
    }

    async fn delete_policy(&self, id: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:DeletePolicy", id)?;
        if s.scp_targets.values().any(|l| l.iter().any(|a| a == id)) {
            return Err(org_error(
                "organizations:DeletePolicy",
                "PolicyInUseException",
                id,
            ));
        }
        s.scps.remove(id);
        Ok(())
    }
}

impl Accounts for FakeCloud {
    type Member = FakeCloud;

    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<Entered<FakeCloud>, Error> {
        self.rtt().await;
        let s = self.enter("sts:AssumeRole", role_arn)?;
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        let role = role_arn.rsplit('/').next().unwrap_or_default();
        let denied = || Error::Aws {
            op: "sts:AssumeRole",
            code: Some("AccessDenied".into()),
            source: format!("not authorized to perform sts:AssumeRole on {role_arn}").into(),
        };
        match s.members.get(account) {
            Some(member) if external_id == s.member_external_id => Ok(Entered {
                clients: member.clone(),
                arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session_name}"),
            }),
            _ => Err(denied()),
        }
    }
}

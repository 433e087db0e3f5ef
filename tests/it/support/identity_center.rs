//! Identity Center as the fake plays it: a leaked portal session's set-up, the configuration,
//! and the `IdentityCenterAdmin` and `Directory` ports.

use killswitch::config::Config;
use killswitch::error::Error;
use killswitch::ports::{Assignment, Directory, IdentityCenterAdmin, Instance};

use super::{ACCOUNT, FakeCloud};

pub const PORTAL_ROLE: &str = "AWSReservedSSO_Developer_0123456789abcdef";
pub const PORTAL_PERMISSION_SET: &str =
    "arn:aws:sso:::permissionSet/ssoins-0000000000000001/ps-0123456789abcdef";
pub const ALICE_USER_ID: &str = "9067c7f5a1-0c3b1a2e-1f2d-4c5b-8a9e-0d1c2b3a4f5e";
pub const PORTAL_SESSION: &str = "AROACKCEVSQ6C3EXAMPLE:alice@example.com";
/// What `identity-center-policy.yaml` creates.
pub const PORTAL_PLACEHOLDER: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"KillSwitchNobodyYet","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:userid":"killswitch-nobody"}}}]}"#;

pub fn portal_policy_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/KillSwitchDeny")
}

/// Identity Center set up: the role, its external ID, assignment removal as asked.
pub fn with_identity_center(mut c: Config, remove_assignments: bool) -> Config {
    c.identity_center = Some(killswitch::config::IdentityCenter {
        role_arn: "arn:aws:iam::111122223333:role/KillSwitchIdentityCenter".into(),
        external_id: "ks-idc-external".into(),
        region: None,
        policy_name: "KillSwitchDeny".into(),
        remove_assignments,
        restore_role_arn: Some(
            "arn:aws:iam::111122223333:role/KillSwitchIdentityCenterRestore".into(),
        ),
    });
    c
}

pub const IDC_INSTANCE: &str = "arn:aws:sso:::instance/ssoins-0000000000000001";
pub const IDC_STORE: &str = "d-0000000001";

impl IdentityCenterAdmin for FakeCloud {
    type Directory = FakeCloud;

    async fn enter_identity_center(
        &self,
        role_arn: &str,
        _external_id: &str,
        _session_name: &str,
        _region: Option<&str>,
    ) -> Result<FakeCloud, Error> {
        self.rtt().await;
        drop(self.enter("sts:AssumeRole", role_arn)?);
        Ok(self.clone())
    }
}

impl Directory for FakeCloud {
    async fn instance(&self) -> Result<Instance, Error> {
        self.rtt().await;
        drop(self.enter("sso:ListInstances", "")?);
        Ok(Instance {
            arn: IDC_INSTANCE.into(),
            identity_store_id: IDC_STORE.into(),
        })
    }

    async fn user_id(&self, store: &str, user_name: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("identitystore:GetUserId", user_name)?;
        assert_eq!(store, IDC_STORE);
        Ok(s.idc_users.get(user_name).cloned())
    }

    async fn permission_set(&self, instance: &str, name: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("sso:ListPermissionSets", name)?;
        assert_eq!(instance, IDC_INSTANCE);
        Ok(s.idc_permission_sets.get(name).cloned())
    }

    async fn assignments(
        &self,
        _instance: &str,
        account: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, Error> {
        self.rtt().await;
        let s = self.enter("sso:ListAccountAssignments", permission_set)?;
        Ok(s.idc_assignments
            .iter()
            .filter(|(a, p, _, _)| a == account && p == permission_set)
            .map(|(_, _, t, id)| Assignment {
                principal_type: t.clone(),
                principal_id: id.clone(),
            })
            .collect())
    }

    async fn delete_assignment(
        &self,
        _instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sso:DeleteAccountAssignment", who.principal_id.clone())?;
        s.idc_assignments.retain(|(a, p, t, id)| {
            !(a == account
                && p == permission_set
                && *t == who.principal_type
                && *id == who.principal_id)
        });
        Ok(())
    }

    async fn create_assignment(
        &self,
        _instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sso:CreateAccountAssignment", who.principal_id.clone())?;
        s.idc_assignments.push((
            account.into(),
            permission_set.into(),
            who.principal_type.clone(),
            who.principal_id.clone(),
        ));
        Ok(())
    }
}

impl FakeCloud {
    /// A leaked Identity Center portal session of alice@example.com (`FIXTURE_ROLE_KEY`, the
    /// identity-center fixture): the permission set's role references the deny policy, which
    /// holds only the set-up placeholder; alice is directly assigned.
    pub fn with_portal_session() -> Self {
        let cloud = Self::default();
        {
            let mut s = cloud.state.lock().unwrap();
            s.role_ids
                .insert(PORTAL_ROLE.into(), "AROACKCEVSQ6C3EXAMPLE".into());
            s.managed.insert(
                portal_policy_arn(),
                vec![("v1".into(), PORTAL_PLACEHOLDER.into(), true)],
            );
            s.role_attached
                .insert(PORTAL_ROLE.into(), vec![portal_policy_arn()]);
            s.idc_users
                .insert("alice@example.com".into(), ALICE_USER_ID.into());
            s.idc_permission_sets
                .insert("Developer".into(), PORTAL_PERMISSION_SET.into());
            s.idc_assignments.push((
                ACCOUNT.into(),
                PORTAL_PERMISSION_SET.into(),
                "USER".into(),
                ALICE_USER_ID.into(),
            ));
        }
        cloud
    }

    /// The deny policy's default document now.
    pub fn portal_policy(&self) -> String {
        let s = self.state.lock().unwrap();
        s.managed[&portal_policy_arn()]
            .iter()
            .find(|v| v.2)
            .map(|v| v.1.clone())
            .unwrap()
    }
}

//! Organizations' centralized root access (`RootAccess`): a root session in a member account
//! that lists and deletes that account's root keys, every call recorded.

use killswitch::error::Error;
use killswitch::incident::{AccessKeyId, AccountId};
use killswitch::ports::{KeyInfo, KeyStatus, RootAccess, RootCredentials};

use super::FakeCloud;

/// A root session in `account`.
pub struct RootSession {
    cloud: FakeCloud,
    account: String,
}

impl RootAccess for FakeCloud {
    type Session = RootSession;

    async fn assume_root(
        &self,
        role_arn: &str,
        _external_id: &str,
        account: &AccountId,
    ) -> Result<RootSession, Error> {
        self.rtt().await;
        drop(self.enter("sts:AssumeRole", role_arn)?);
        self.rtt().await;
        drop(self.enter("sts:AssumeRoot", account.as_str())?);
        Ok(RootSession {
            cloud: self.clone(),
            account: account.to_string(),
        })
    }
}

impl RootCredentials for RootSession {
    async fn root_keys(&self) -> Result<Vec<KeyInfo>, Error> {
        self.cloud.rtt().await;
        let s = self.cloud.enter("root:iam:ListAccessKeys", &self.account)?;
        Ok(s.root_keys
            .get(&self.account)
            .into_iter()
            .flatten()
            .filter_map(|k| AccessKeyId::parse(k).ok())
            .map(|id| KeyInfo {
                id,
                status: KeyStatus::Active,
                created: None,
            })
            .collect())
    }

    async fn delete_root_key(&self, key: &AccessKeyId) -> Result<bool, Error> {
        self.cloud.rtt().await;
        let mut s = self.cloud.enter("root:iam:DeleteAccessKey", key.as_str())?;
        let keys = s.root_keys.entry(self.account.clone()).or_default();
        let before = keys.len();
        keys.retain(|k| k != key.as_str());
        Ok(keys.len() < before)
    }
}

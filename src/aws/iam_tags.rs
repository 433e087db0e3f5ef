//! Tags on IAM users and roles: the containment tag an org guard keys on.

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::PolicyTarget;

impl AwsClients {
    pub(super) async fn iam_tag(
        &self,
        target: &PolicyTarget,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        let tag = aws_sdk_iam::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| Error::BadEvent(format!("tag {key}: {e}")))?;
        match target {
            PolicyTarget::User(user) => self
                .iam
                .tag_user()
                .user_name(user)
                .tags(tag)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:TagUser")),
            PolicyTarget::Role(role) => self
                .iam
                .tag_role()
                .role_name(role)
                .tags(tag)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:TagRole")),
        }
    }

    pub(super) async fn iam_tag_value(
        &self,
        target: &PolicyTarget,
        key: &str,
    ) -> Result<Option<String>, Error> {
        // 50 tags at most on a principal: one page.
        let tags = match target {
            PolicyTarget::User(user) => self
                .iam
                .list_user_tags()
                .user_name(user)
                .send()
                .await
                .map(|o| o.tags)
                .map_err(aws_err("iam:ListUserTags"))?,
            PolicyTarget::Role(role) => self
                .iam
                .list_role_tags()
                .role_name(role)
                .send()
                .await
                .map(|o| o.tags)
                .map_err(aws_err("iam:ListRoleTags"))?,
        };
        Ok(tags.into_iter().find(|t| t.key == key).map(|t| t.value))
    }

    pub(super) async fn iam_untag(&self, target: &PolicyTarget, key: &str) -> Result<(), Error> {
        match target {
            PolicyTarget::User(user) => self
                .iam
                .untag_user()
                .user_name(user)
                .tag_keys(key)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:UntagUser")),
            PolicyTarget::Role(role) => self
                .iam
                .untag_role()
                .role_name(role)
                .tag_keys(key)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:UntagRole")),
        }
    }
}

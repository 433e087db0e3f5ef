//! What the holder sees of its own principal: IAM's control plane, which shows containment the
//! moment it is written (authorization follows seconds later).

use std::collections::BTreeSet;

use aws_sdk_iam::types::StatusType;

use super::{Holder, RacePlan, code};

/// What IAM shows about the holder's own principal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub(super) inline: BTreeSet<String>,
    pub(super) attached: BTreeSet<String>,
    pub(super) boundary: Option<String>,
    pub(super) tags: BTreeSet<String>,
    /// The leaked key is not Active (a user's key only).
    pub(super) key_off: bool,
}

impl View {
    /// What is here that was not at the start: containment, as far as the holder can tell.
    pub(super) fn minus(&self, baseline: &View) -> View {
        View {
            inline: self.inline.difference(&baseline.inline).cloned().collect(),
            attached: self
                .attached
                .difference(&baseline.attached)
                .cloned()
                .collect(),
            boundary: self
                .boundary
                .clone()
                .filter(|b| baseline.boundary.as_ref() != Some(b)),
            tags: self.tags.difference(&baseline.tags).cloned().collect(),
            key_off: self.key_off && !baseline.key_off,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.inline.is_empty()
            && self.attached.is_empty()
            && self.boundary.is_none()
            && self.tags.is_empty()
            && !self.key_off
    }
}

/// The holder's principal as IAM shows it, every read recorded; an error when any read is
/// refused (the holder then sees nothing to answer).
pub(super) async fn read_view(
    iam: &aws_sdk_iam::Client,
    plan: &RacePlan,
    record: &mut dyn FnMut(&str, &Result<(), String>),
) -> Result<View, String> {
    match &plan.holder {
        Holder::User(user) => {
            let (inline, attached, got, tags, keys) = tokio::join!(
                iam.list_user_policies().user_name(user).send(),
                iam.list_attached_user_policies().user_name(user).send(),
                iam.get_user().user_name(user).send(),
                iam.list_user_tags().user_name(user).send(),
                iam.list_access_keys().user_name(user).send(),
            );
            let inline = noted(record, "iam:ListUserPolicies", inline)?;
            let attached = noted(record, "iam:ListAttachedUserPolicies", attached)?;
            let got = noted(record, "iam:GetUser", got)?;
            let tags = noted(record, "iam:ListUserTags", tags)?;
            let keys = noted(record, "iam:ListAccessKeys", keys)?;
            Ok(View {
                inline: inline.policy_names().iter().cloned().collect(),
                attached: arns(attached.attached_policies()),
                boundary: got
                    .user()
                    .and_then(|u| u.permissions_boundary())
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(str::to_owned),
                tags: tags.tags().iter().map(|t| t.key().to_owned()).collect(),
                key_off: keys.access_key_metadata().iter().any(|k| {
                    k.access_key_id() == Some(plan.leaked.access_key_id.as_str())
                        && k.status() != Some(&StatusType::Active)
                }),
            })
        }
        Holder::Role(role) => {
            let (inline, attached, got, tags) = tokio::join!(
                iam.list_role_policies().role_name(role).send(),
                iam.list_attached_role_policies().role_name(role).send(),
                iam.get_role().role_name(role).send(),
                iam.list_role_tags().role_name(role).send(),
            );
            let inline = noted(record, "iam:ListRolePolicies", inline)?;
            let attached = noted(record, "iam:ListAttachedRolePolicies", attached)?;
            let got = noted(record, "iam:GetRole", got)?;
            let tags = noted(record, "iam:ListRoleTags", tags)?;
            Ok(View {
                inline: inline.policy_names().iter().cloned().collect(),
                attached: arns(attached.attached_policies()),
                boundary: got
                    .role()
                    .and_then(|r| r.permissions_boundary())
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(str::to_owned),
                tags: tags.tags().iter().map(|t| t.key().to_owned()).collect(),
                key_off: false,
            })
        }
    }
}

fn noted<T, E: aws_sdk_iam::error::ProvideErrorMetadata + std::fmt::Debug>(
    record: &mut dyn FnMut(&str, &Result<(), String>),
    action: &str,
    result: Result<T, E>,
) -> Result<T, String> {
    let result = result.map_err(code);
    record(action, &result.as_ref().map(drop).map_err(Clone::clone));
    result
}

fn arns(attached: &[aws_sdk_iam::types::AttachedPolicy]) -> BTreeSet<String> {
    attached
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect()
}

//! The sentence that says AWS's own quarantine policy is on the user, and which version: read
//! from the user's attached policies (`iam:ListAttachedUserPolicies`), never assumed from an
//! `AWS_RISK_IAM_QUARANTINE` event. Pure.

/// AWS's managed quarantine policies share this name; V2, V3 and V4 are known.
const PREFIX: &str = "AWSCompromisedKeyQuarantine";

/// The AWS-managed quarantine policy among `attached` (policy ARNs), by name: only AWS's own
/// (`arn:<partition>:iam::aws:policy/…`), never a customer policy that borrows the name.
pub fn version(attached: &[String]) -> Option<&str> {
    attached.iter().find_map(|arn| {
        let (head, name) = arn.rsplit_once(":policy/")?;
        (head.ends_with(":iam::aws") && name.starts_with(PREFIX)).then_some(name)
    })
}

/// What the notice says when AWS's quarantine policy is attached to `user`. Its contents are
/// AWS's and change between versions (V3 leaves `iam:DeleteUserPolicy` and `sts:AssumeRole`
/// allowed), so killswitch contains as if it were absent, and restore never detaches it.
pub fn sentence(user: &str, attached: &[String]) -> Option<String> {
    let name = version(attached)?;
    Some(format!(
        "AWS attached its quarantine policy {name} to {user}: it denies a list of actions, not all (V3 leaves iam:DeleteUserPolicy and sts:AssumeRole allowed), so killswitch contained the key as if it were absent. killswitch restore never detaches it; remove it yourself only once AWS's support case is closed (aws iam detach-user-policy --user-name {user} --policy-arn arn:aws:iam::aws:policy/{name})."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_the_version_aws_attached() {
        for v in ["V2", "V3", "V4"] {
            let attached = arns(&[
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                &format!("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine{v}"),
            ]);
            let name = format!("AWSCompromisedKeyQuarantine{v}");
            assert_eq!(version(&attached), Some(name.as_str()));
            let text = sentence("alice", &attached).unwrap();
            assert!(text.contains(&name), "{text}");
            assert!(text.contains("never detaches"), "{text}");
        }
    }

    #[test]
    fn a_customer_policy_with_the_name_is_not_aws_s() {
        let attached = arns(&["arn:aws:iam::111122223333:policy/AWSCompromisedKeyQuarantineV3"]);
        assert_eq!(version(&attached), None);
        assert_eq!(sentence("alice", &attached), None);
    }

    #[test]
    fn other_partitions_count() {
        let attached = arns(&["arn:aws-us-gov:iam::aws:policy/AWSCompromisedKeyQuarantineV2"]);
        assert_eq!(version(&attached), Some("AWSCompromisedKeyQuarantineV2"));
    }
}

//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, split once. The resource keeps any `:` it
//! holds (`arn:aws:sns:us-east-1:111122223333:topic` has none; a Lambda alias has one).

use std::fmt;

/// A parsed ARN borrowing the text it came from. Parsing checks the shape only (six fields, the
/// `arn` prefix, a non-empty partition and service); callers check what they rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    /// Empty for global services (IAM, Organizations).
    pub region: &'a str,
    /// Empty for AWS-owned resources (managed policies, Security Hub products).
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        let (prefix, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
        let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
        (prefix == "arn" && !partition.is_empty() && !service.is_empty()).then_some(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// The resource's type: `role` in `role/path/Name`, `user`, `assumed-role`, `policy`…
    pub fn resource_type(&self) -> &'a str {
        self.resource
            .split_once('/')
            .map_or(self.resource, |(kind, _)| kind)
    }

    /// What follows the resource type and its `/`: `path/Name` in `role/path/Name`.
    pub fn resource_id(&self) -> Option<&'a str> {
        self.resource.split_once('/').map(|(_, rest)| rest)
    }

    /// The last `/` segment of the resource: a role's or user's name without its path.
    pub fn name(&self) -> &'a str {
        self.resource.rsplit('/').next().unwrap_or(self.resource)
    }

    /// The resource if it is of this type: `of_type("role")` on `role/p/Name` is `p/Name`.
    pub fn of_type(&self, kind: &str) -> Option<&'a str> {
        self.resource
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('/'))
    }
}

impl fmt::Display for Arn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_six_fields_and_keeps_colons_in_the_resource() {
        let a = Arn::parse("arn:aws:lambda:us-east-1:111122223333:function:f:live").unwrap();
        assert_eq!(
            (a.partition, a.service, a.region, a.account, a.resource),
            (
                "aws",
                "lambda",
                "us-east-1",
                "111122223333",
                "function:f:live"
            )
        );
        assert_eq!(
            a.to_string(),
            "arn:aws:lambda:us-east-1:111122223333:function:f:live"
        );
    }

    #[test]
    fn names_and_types_of_iam_resources() {
        let role = Arn::parse("arn:aws:iam::111122223333:role/ops/Deployer").unwrap();
        assert_eq!(role.resource_type(), "role");
        assert_eq!(role.resource_id(), Some("ops/Deployer"));
        assert_eq!(role.name(), "Deployer");
        assert_eq!(role.of_type("role"), Some("ops/Deployer"));
        assert_eq!(role.of_type("user"), None);
        let session = Arn::parse("arn:aws:sts::111122223333:assumed-role/R/s@x").unwrap();
        assert_eq!(session.of_type("assumed-role"), Some("R/s@x"));
        assert_eq!(session.of_type("role"), None);
    }

    #[test]
    fn rejects_what_is_not_an_arn() {
        for bad in [
            "",
            "arn",
            "arn:aws:iam::1",
            "urn:aws:iam::1:user/u",
            "arn::iam::1:user/u",
        ] {
            assert_eq!(Arn::parse(bad), None, "{bad:?}");
        }
    }
}

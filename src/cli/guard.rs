//! `killswitch guard-policy`: the org guard's SCP document, printed for an operator who deploys
//! it another way than `org-guard.yaml` (the console, Terraform, `aws organizations
//! create-policy`). Offline: it needs no credentials and calls nothing.

use std::process::ExitCode;

use super::{Output, Show};
use crate::error::Error;
use crate::policy::guard::{self, Exempt, MAX_SCP_CHARS};

/// The roles the guard spares, by name (they are matched in every account the guard covers).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardPolicyArgs {
    /// The function's execution role (template.yaml's output ResponderRoleName).
    #[arg(long, value_name = "NAME")]
    pub responder_role: String,
    /// The role member-role.yaml deploys in each member account (template.yaml's
    /// MemberRoleName); give it even for a single account: no one else may then create it.
    #[arg(long, value_name = "NAME")]
    pub member_role: String,
    /// The operators' restore role (template.yaml creates STACK-restore); give it even if you
    /// have none, for the same reason.
    #[arg(long, value_name = "NAME")]
    pub restore_role: String,
    /// The role that deploys and updates killswitch's own stacks (a CloudFormation or StackSets
    /// execution role): it may write killswitch's roles, and is spared nothing else.
    #[arg(long, value_name = "NAME")]
    pub deployer_role: Option<String>,
    /// The partition the accounts are in.
    #[arg(long, value_name = "PARTITION", default_value = "aws")]
    pub partition: String,
}

impl GuardPolicyArgs {
    fn exempt(&self) -> Result<Exempt, Error> {
        if !guard::is_partition(&self.partition) {
            return Err(Error::Usage(format!(
                "--partition {:?} is not a partition (aws, aws-cn, aws-us-gov, ...)",
                self.partition
            )));
        }
        Exempt::parse(
            &self.responder_role,
            &self.member_role,
            &self.restore_role,
            self.deployer_role.as_deref(),
        )
        .map_err(|e| Error::Usage(e.to_string()))
    }
}

/// The document on stdout: indented for a person when it still fits Organizations' limit
/// (whitespace counts through the API), compact for a script or a file.
pub fn run(args: &GuardPolicyArgs, show: Show) -> Result<ExitCode, Error> {
    let exempt = args.exempt()?;
    let compact = guard::document(&exempt, &args.partition);
    let pretty = serde_json::from_str::<serde_json::Value>(&compact)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .filter(|p| p.len() <= MAX_SCP_CHARS);
    let text = match (show.output, pretty) {
        (Output::Text, Some(pretty)) => pretty,
        (Output::Text, None) | (Output::Json, _) => compact,
    };
    println!("{text}");
    if show.output == Output::Text && !show.quiet {
        eprintln!(
            "killswitch: attach it as an SCP from the management account or the delegated policy administrator (docs/org-guard.md)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `Findings` over Security Hub.

use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::incident::FindingRef;
use crate::ports::Findings;

/// `Note.UpdatedBy`: who wrote the note, as the Security Hub console shows it.
const UPDATED_BY: &str = "killswitch";

impl Findings for AwsClients {
    async fn update_finding(
        &self,
        finding: &FindingRef,
        notified: bool,
        note: &str,
    ) -> Result<bool, Error> {
        // A finding lives in its own Region's Security Hub.
        let client = aws_sdk_securityhub::Client::from_conf(
            self.securityhub
                .config()
                .to_builder()
                .region(aws_config::Region::new(finding.region.clone()))
                .build(),
        );
        let id = AwsSecurityFindingIdentifier::builder()
            .id(&finding.id)
            .product_arn(&finding.product_arn)
            .build();
        let note = NoteUpdate::builder()
            .text(crate::incident::truncate(note, 500))
            .updated_by(UPDATED_BY)
            .build();
        let mut call = client
            .batch_update_findings()
            .finding_identifiers(id)
            .note(note);
        if notified {
            call = call.workflow(
                WorkflowUpdate::builder()
                    .status(WorkflowStatus::Notified)
                    .build(),
            );
        }
        let out = call
            .send()
            .await
            .map_err(aws_err("securityhub:BatchUpdateFindings"))?;
        Ok(out
            .processed_findings()
            .iter()
            .any(|p| p.id() == Some(finding.id.as_str())))
    }
}

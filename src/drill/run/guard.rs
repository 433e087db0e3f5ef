//! What a racing scenario's response runs with besides the function's settings: the org guard
//! (the project's own SCP, `policy::guard`), the responder role the guard exempts, and the
//! incident table pivot events are weighed against.

use aws_config::SdkConfig;

use crate::aws::AwsClients;
use crate::aws::sandbox::Creds;
use crate::incident::AccountId;
use crate::playbook::{Responder, locate};
use crate::policy::guard::{self, Exempt};

use super::race::RaceSetup;
use super::*;

/// The member and restore roles' names the guard exempts beside the responder: org-guard.yaml's
/// defaults (a drill enters no member account and restores nothing).
const MEMBER_ROLE: &str = "KillSwitchMember";
const RESTORE_ROLE: &str = "killswitch-restore";

/// Who the handler runs as when it is not the drill's operator: a responder role's session.
pub(super) struct Acting {
    pub sdk: SdkConfig,
    pub responder: Responder,
}

impl Play<'_> {
    /// The incident table the function's pivot events read what is under containment from. On
    /// the local AWS one of the drill's own, removed afterwards; on a real account the deployed
    /// function's (`KILLSWITCH_INCIDENT_TABLE`), so that its own pivot events find what the
    /// drill's response recorded.
    pub(super) async fn incident_table(
        &self,
        planted: &mut Planted,
    ) -> Result<Option<String>, Error> {
        match self.drill.target {
            Target::Local { .. } => {
                let name = format!("drill-{}-incidents", self.names.tag);
                self.sandbox.create_incident_table(&name).await?;
                planted.table = Some(name.clone());
                Ok(Some(name))
            }
            Target::Account { .. } => {
                let table = std::env::var("KILLSWITCH_INCIDENT_TABLE")
                    .ok()
                    .filter(|t| !t.is_empty());
                progress(
                    &self.s.name,
                    "planted",
                    &match &table {
                        Some(t) => format!(
                            "pivot events: the deployed function's rules deliver them to it (not forwarded by the drill); its table {t} records this response"
                        ),
                        None => "pivot events: the deployed function's rules deliver them to it (not forwarded by the drill), but KILLSWITCH_INCIDENT_TABLE is not set: it will not find this response's containment".into(),
                    },
                );
                Ok(table)
            }
        }
    }

    /// On the local AWS the drill's operator is an IAM user, and the guard exempts roles only
    /// (by name, in every account): the handler then runs as a responder role of the drill's,
    /// created before the guard (which refuses anyone else creating or editing it).
    pub(super) async fn plant_responder_role(
        &self,
        planted: &mut Planted,
    ) -> Result<Option<String>, Error> {
        if !self.s.settings.org_guard {
            return Ok(None);
        }
        let Target::Local { .. } = self.drill.target else {
            return Ok(None);
        };
        let operator = self.drill.responder;
        let trusted = match &operator.role_name {
            Some(role) => format!("arn:aws:iam::{}:role/{role}", operator.account),
            None => operator.arn.clone(),
        };
        let name = format!("drill-{}-responder", self.names.tag);
        planted.roles.push(name.clone());
        self.sandbox.create_role(&name, &trusted, &["*"]).await?;
        Ok(Some(name))
    }

    /// The guard's document with its exemptions: the responder role the handler runs as.
    pub(super) fn guard_document(&self, responder_role: &str) -> Result<String, Error> {
        let exempt = Exempt::parse(responder_role, MEMBER_ROLE, RESTORE_ROLE, None)
            .map_err(|e| Error::Usage(e.0))?;
        let partition = locate::partition(&self.drill.responder.arn);
        Ok(guard::document(&exempt, partition))
    }

    /// Once IAM's lag has run out, a session of the responder role for the handler.
    pub(super) async fn act_as_responder(&self, race: &mut Option<RaceSetup>) -> Result<(), Error> {
        let Some(r) = race else { return Ok(()) };
        let Some(role) = &r.responder_role else {
            return Ok(());
        };
        let account = &self.drill.responder.account;
        let creds: Creds = self
            .sandbox
            .assume_role(&format!("arn:aws:iam::{account}:role/{role}"))
            .await?;
        let sdk = self.sandbox.acting_as(&creds);
        let (account, arn) = AwsClients::from_sdk_config(&sdk, String::new())
            .caller_identity()
            .await?;
        progress(
            &self.s.name,
            "planted",
            &format!("the handler runs as {arn} (exempt from the org guard)"),
        );
        r.acting = Some(Acting {
            sdk,
            responder: Responder::from_arn(AccountId::parse(&account)?, &arn),
        });
        Ok(())
    }
}

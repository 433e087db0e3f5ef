//! The incident table of a drill on the local AWS: the deployed function's table, in the shape
//! `template.yaml` gives it (one string key `pk`), so that pivot events find what the drill's
//! response recorded.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use super::{Creds, Sandbox, aws_err, code_of, drill_err};
use crate::error::Error;

impl Sandbox {
    pub async fn create_incident_table(&self, name: &str) -> Result<(), Error> {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(built(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )?)
            .key_schema(built(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build(),
            )?)
            .send()
            .await
            .map_err(aws_err("dynamodb:CreateTable"))?;
        Ok(())
    }

    /// Deletes a table the drill created; a missing one is fine.
    pub async fn delete_table(&self, name: &str) {
        let _ = aws_sdk_dynamodb::Client::new(&self.sdk)
            .delete_table()
            .table_name(name)
            .send()
            .await;
    }
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, Error> {
    r.map_err(|e| super::drill_err("dynamodb:CreateTable", &e.to_string()))
}

impl Sandbox {
    /// `aws:userid` of `creds`' holder (`ROLE-ID:session` for a role session).
    pub async fn caller_userid(&self, creds: &Creds) -> Result<String, Error> {
        aws_sdk_sts::Client::new(&self.as_holder(creds))
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| drill_err("sts:GetCallerIdentity", &code_of(&e)))?
            .user_id
            .ok_or_else(|| drill_err("sts:GetCallerIdentity", "no UserId"))
    }
}

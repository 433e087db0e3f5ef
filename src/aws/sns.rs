//! `Notifier` over SNS.

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::Notifier;

impl Notifier for AwsClients {
    async fn publish(&self, subject: &str, body: &str) -> Result<(), Error> {
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("sns:Publish"))
    }

    fn publishes(&self) -> bool {
        !self.topic_arn.is_empty()
    }
}

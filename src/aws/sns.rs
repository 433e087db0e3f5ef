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

    /// No subject: the chat integration reads the message body only, as its JSON card.
    async fn publish_chat(&self, card: &str) -> Result<(), Error> {
        let Some(topic) = self.chat_topic_arn.as_deref() else {
            return Ok(());
        };
        self.chat_sns
            .publish()
            .topic_arn(topic)
            .message(card)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("sns:Publish"))
    }

    fn chats(&self) -> bool {
        self.chat_topic_arn.is_some()
    }
}

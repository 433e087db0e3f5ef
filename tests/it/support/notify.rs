//! What reaches people: SNS notices and chat cards (the `Notifier` port), Security Hub's workflow
//! (`Findings`).

use killswitch::error::Error;
use killswitch::incident::FindingRef;
use killswitch::ports::{Findings, Notifier};

use super::FakeCloud;

impl Notifier for FakeCloud {
    async fn publish(&self, subject: &str, body: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sns:Publish", subject)?;
        s.published.push((subject.into(), body.into()));
        Ok(())
    }

    fn publishes(&self) -> bool {
        !self.state.lock().unwrap().no_topic
    }

    async fn publish_chat(&self, card: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sns:Publish", "chat")?;
        s.chat_cards.push(card.into());
        Ok(())
    }

    fn chats(&self) -> bool {
        self.state.lock().unwrap().chat_topic
    }
}

impl Findings for FakeCloud {
    async fn update_finding(
        &self,
        finding: &FindingRef,
        notified: bool,
        note: &str,
    ) -> Result<bool, Error> {
        self.rtt().await;
        let mut s = self.enter("securityhub:BatchUpdateFindings", finding.id.clone())?;
        assert!(!note.is_empty() && note.chars().count() <= 512, "{note}");
        Ok(match s.findings.get_mut(&finding.id) {
            Some((workflow, notes)) => {
                if notified {
                    *workflow = "NOTIFIED".into();
                }
                notes.push(note.into());
                true
            }
            None => false,
        })
    }
}

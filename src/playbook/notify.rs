//! What goes out when: the short notice, the full report, STILL TRYING, a sample's notice, to
//! the email topic and the chat topic at once. Every word of them is built in `report::words`
//! (`Report::message`, `Report::short_message`, `report::chat::card`); this only sends.
//! REJECTED and KEY NOT FOUND pages are limited per window ([`flood`]).

pub mod flood;

use chrono::{DateTime, Utc};
use tracing::{error, info};

use super::Plan;
use crate::incident::{AccountId, Advisory, Incident, SampleFinding};
use crate::ports::Notifier;
use crate::report::chat::{self, Form};
use crate::report::{Notification, Report};

/// Summary, next steps and undo commands, from what happened (`report::words::finish`).
pub fn finish(
    report: &mut Report,
    incident: &Incident,
    plan: Option<&Plan>,
    member: Option<&AccountId>,
) {
    crate::report::words::finish(report, incident, plan, member);
}

/// Publishes the full report.
pub async fn notify<N: Notifier>(cloud: &N, report: &mut Report) {
    let subject = report.subject();
    publish(cloud, report, subject, report.message(), Form::Full).await;
}

/// The short notice right after containment: on-call knows within seconds; the full report
/// follows from the follow-through.
pub async fn announce<N: Notifier>(cloud: &N, report: &mut Report) {
    let subject = report.short_subject();
    let body = report.short_message();
    publish(cloud, report, subject, body, Form::Short).await;
}

async fn publish<N: Notifier>(
    cloud: &N,
    report: &mut Report,
    subject: String,
    body: String,
    form: Form,
) {
    // Chat and email at once: one failing or slow never holds up the other.
    let card = cloud.chats().then(|| chat::card(report, &subject, form));
    let chat_delivery = async {
        let card = card?;
        Some(match cloud.publish_chat(&card).await {
            Ok(()) => {
                info!(step = "notify", outcome = "done", "chat card published");
                Notification::Sent {
                    subject: subject.clone(),
                }
            }
            Err(e) => {
                error!(step = "notify", error = %e.chain(), "could not publish the chat card");
                Notification::Failed {
                    subject: subject.clone(),
                    error: e.chain(),
                }
            }
        })
    };
    let email = async {
        if cloud.publishes() {
            Some(cloud.publish(&subject, &body).await)
        } else {
            None
        }
    };
    let (chat_delivery, email) = tokio::join!(chat_delivery, email);
    if chat_delivery.is_some() {
        report.chat = chat_delivery;
    }
    let Some(email) = email else {
        info!(step = "notify", outcome = "not published", subject = %subject, "no topic");
        report.notification = Notification::NotPublished { subject };
        return;
    };
    match email {
        Ok(()) => {
            info!(step = "notify", outcome = "done", subject = %subject, "published");
            report.notification = Notification::Sent { subject };
        }
        Err(e) => {
            error!(step = "notify", error = %e.chain(), "could not publish");
            report.notification = Notification::Failed {
                subject,
                error: e.chain(),
            };
        }
    }
}

/// A re-emitted finding whose count grew: short, and says containment still holds.
pub async fn still_trying<N: Notifier>(cloud: &N, report: &mut Report, was: u64, now: u64) {
    let subject = report.still_trying_subject(was, now);
    let body = report.still_trying_message(was, now);
    publish(cloud, report, subject, body, Form::StillTrying { was, now }).await;
}

/// An event killswitch cannot act on (a console password): a notice with the manual steps, no
/// other call.
pub async fn respond_to_advisory<N: Notifier>(
    cloud: &N,
    advisory: &Advisory,
    now: DateTime<Utc>,
) -> Report {
    let mut report = Report::advisory(advisory, now);
    tracing::warn!(event = %advisory.id, code = %advisory.event_type_code, "notify-only event");
    notify(cloud, &mut report).await;
    report
}

/// A GuardDuty sample: a notice, no IAM call.
pub async fn respond_to_sample<N: Notifier>(
    cloud: &N,
    sample: &SampleFinding,
    now: DateTime<Utc>,
) -> Report {
    let mut report = Report::sample(sample, now);
    info!(finding_id = %sample.finding_id, "sample finding ignored");
    notify(cloud, &mut report).await;
    report
}

//! Handing the follow-through to the durable queue. A failed hand-off is never silent: the
//! follow-through then runs inline, in the same invocation.

use std::time::Duration;

use super::follow::FollowUp;
use super::sweep::Sweep;
use crate::error::Error;

/// A message of the follow-up queue.
pub enum Message {
    FollowUp(Box<FollowUp>),
    Sweep(Box<Sweep>),
}

/// Reads any message of the queue: a sweep says so (`"kind": "sweep"`), a follow-up does not.
pub fn parse_message(body: &str) -> Result<Message, Error> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Error::BadEvent(format!("follow-up message: {e}")))?;
    if value.get("kind").and_then(serde_json::Value::as_str) == Some("sweep") {
        let s: Sweep = serde_json::from_value(value)
            .map_err(|e| Error::BadEvent(format!("sweep message: {e}")))?;
        if s.version != Sweep::VERSION {
            return Err(Error::BadEvent(format!(
                "sweep message version {} (this function reads {})",
                s.version,
                Sweep::VERSION
            )));
        }
        return Ok(Message::Sweep(Box::new(s)));
    }
    parse(body).map(|f| Message::FollowUp(Box::new(f)))
}

/// SQS delays a message by at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The message body; its digest goes into the incident record before it is sent.
pub fn encode(follow_up: &FollowUp) -> String {
    serde_json::to_string(follow_up).unwrap_or_default()
}

/// Reads a queue message back. Only this function writes the queue (its policy says so), but
/// anyone allowed to invoke the function can hand it an SQS-shaped event: the body is checked
/// like any input here, and against the incident record's hand-off digests before it acts.
pub fn parse(body: &str) -> Result<FollowUp, Error> {
    let f: FollowUp = serde_json::from_str(body)
        .map_err(|e| Error::BadEvent(format!("follow-up message: {e}")))?;
    if f.version != FollowUp::VERSION {
        return Err(Error::BadEvent(format!(
            "follow-up message version {} (this function reads {})",
            f.version,
            FollowUp::VERSION
        )));
    }
    Ok(f)
}

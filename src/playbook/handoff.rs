//! Handing the follow-through to the durable queue. A failed hand-off is never silent: the
//! follow-through then runs inline, in the same invocation.

use std::time::Duration;

use super::follow::FollowUp;
use crate::error::Error;

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

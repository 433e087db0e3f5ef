//! Handing the follow-through to the durable queue. A failed hand-off is never silent: the
//! follow-through then runs inline, in the same invocation.

use std::time::Duration;

use super::follow::FollowUp;
use crate::error::Error;
use crate::ports::FollowUpQueue;

/// SQS delays a message by at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

pub async fn hand_off<Q: FollowUpQueue>(
    queue: &Q,
    follow_up: &FollowUp,
    delay: Duration,
) -> Result<(), Error> {
    let body = serde_json::to_string(follow_up).map_err(|e| Error::BadEvent(e.to_string()))?;
    queue.hand_off(&body, delay.min(MAX_DELAY)).await
}

/// Reads a queue message back. Only this function writes the queue (its policy says so), but
/// the body is still checked like any input.
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

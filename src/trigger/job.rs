//! The payloads of the stack's own scheduled rules (`{"killswitch": "watchdog"}`,
//! `{"killswitch": "canary"}`): jobs, not incidents. Anyone allowed to invoke the function can
//! send them too, so both jobs are harmless by construction: the watchdog reads and pages, the
//! canary writes only on the canary user its configuration names. The payload carries nothing
//! else: a job never takes a name, a key or a target from its input.

use serde_json::Value;

use crate::error::Error;
use crate::incident::truncate;

/// The one field a job's payload has.
pub const JOB_FIELD: &str = "killswitch";

/// A scheduled job of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Pages each recorded follow-through or sweep that was due and never ran.
    Watchdog,
    /// Proves the chain end to end: a write on the canary user, its read-back, the heartbeat.
    Canary,
}

impl Job {
    pub const ALL: [Job; 2] = [Job::Watchdog, Job::Canary];

    /// The value of [`JOB_FIELD`] that names it.
    pub const fn name(self) -> &'static str {
        match self {
            Job::Watchdog => "watchdog",
            Job::Canary => "canary",
        }
    }
}

/// The job a payload names; `None` when it is not a job's payload (no [`JOB_FIELD`]). A payload
/// that has the field but is not exactly `{"killswitch": "<job>"}` is refused.
pub fn job(payload: &Value) -> Result<Option<Job>, Error> {
    let Some(map) = payload.as_object() else {
        return Ok(None);
    };
    let Some(named) = map.get(JOB_FIELD) else {
        return Ok(None);
    };
    if map.len() != 1 {
        return Err(Error::BadEvent(format!(
            "a scheduled job's payload has the \"{JOB_FIELD}\" field only: a job takes nothing from its input"
        )));
    }
    let name = named.as_str().unwrap_or_default();
    Job::ALL
        .into_iter()
        .find(|j| j.name() == name)
        .map(Some)
        .ok_or_else(|| {
            Error::BadEvent(format!(
                "unknown scheduled job {:?} (watchdog or canary)",
                truncate(&named.to_string(), 64)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_exact_payloads_are_jobs() {
        assert_eq!(
            job(&json!({"killswitch": "watchdog"})).unwrap(),
            Some(Job::Watchdog)
        );
        assert_eq!(
            job(&json!({"killswitch": "canary"})).unwrap(),
            Some(Job::Canary)
        );
        assert_eq!(job(&json!({"access_key_id": "AKIA"})).unwrap(), None);
        assert_eq!(job(&json!([1])).unwrap(), None);
        for bad in [
            json!({"killswitch": "canary", "user": "alice"}),
            json!({"killswitch": "reboot"}),
            json!({"killswitch": 1}),
        ] {
            assert!(matches!(job(&bad), Err(Error::BadEvent(_))), "{bad}");
        }
    }
}

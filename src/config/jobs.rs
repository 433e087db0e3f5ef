//! The settings of the scheduled jobs: the watchdog's grace and the canary's user and notice.

use std::time::Duration;

use super::parse::{Vars, is_role_name};
use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jobs {
    /// How long past its due time a follow-through or sweep may still run before the watchdog
    /// pages it (`KILLSWITCH_WATCHDOG_GRACE_SECONDS`).
    pub watchdog_grace: Duration,
    /// The only principal the canary writes on; `None`: no canary (`KILLSWITCH_CANARY_USER`).
    pub canary_user: Option<String>,
    /// The canary also publishes a HEARTBEAT notice on each success (`KILLSWITCH_CANARY_NOTICE`).
    pub canary_notice: bool,
}

impl Default for Jobs {
    fn default() -> Self {
        Self {
            watchdog_grace: Duration::from_secs(1800),
            canary_user: None,
            canary_notice: false,
        }
    }
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<Jobs, Error> {
    Ok(Jobs {
        watchdog_grace: Duration::from_secs(vars.number("KILLSWITCH_WATCHDOG_GRACE_SECONDS")?),
        canary_user: canary_user(vars)?,
        canary_notice: vars.flag("KILLSWITCH_CANARY_NOTICE")?,
    })
}

/// The canary writes a deny on this user every run: a name that is not a canary's (a real
/// user's, by mistake) stops start-up instead.
fn canary_user(vars: &Vars<'_>) -> Result<Option<String>, Error> {
    const NAME: &str = "KILLSWITCH_CANARY_USER";
    match vars.text(NAME) {
        Some(u) if !is_role_name(&u) || !u.ends_with("-canary") => Err(Error::Config {
            name: NAME,
            reason: format!("{u:?} is not an IAM user name ending in -canary"),
        }),
        user => Ok(user),
    }
}

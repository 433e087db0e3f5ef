//! `KILLSWITCH_ACCEPTS`: which payloads a function answers. Reserved concurrency is per function
//! and shared by all its triggers, so manual requests get a function of their own (same binary):
//! a flood of them can never take the concurrency findings are contained with. Each function
//! refuses the other's kind before any call.

use super::parse::Vars;
use crate::error::Error;

const NAME: &str = "KILLSWITCH_ACCEPTS";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// GuardDuty, Health and Security Hub events: the trigger function.
    Findings,
    /// Manual requests: the manual function, the one the incident-response role invokes.
    Manual,
    /// Both: the command line, and a deployment of one function.
    All,
}

impl Accepts {
    /// `Ok` when this function answers a payload of this kind (`manual`: a manual request, else
    /// a finding or event); otherwise bad input naming the function that answers it.
    pub fn check(self, manual: bool) -> Result<(), Error> {
        let refused = match (self, manual) {
            (Accepts::Findings, true) => {
                "this function answers findings only (KILLSWITCH_ACCEPTS=findings): invoke the manual function (the stack's ManualFunctionName output) with manual requests"
            }
            (Accepts::Manual, false) => {
                "this function answers manual requests only (KILLSWITCH_ACCEPTS=manual): findings and events go to the trigger function (the stack's FunctionName output) through EventBridge"
            }
            (Accepts::All, _) | (Accepts::Findings, false) | (Accepts::Manual, true) => {
                return Ok(());
            }
        };
        Err(Error::BadEvent(format!("{refused}; nothing was done")))
    }
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<Accepts, Error> {
    match vars.text(NAME).as_deref() {
        None | Some("all") => Ok(Accepts::All),
        Some("findings") => Ok(Accepts::Findings),
        Some("manual") => Ok(Accepts::Manual),
        Some(other) => Err(Error::Config {
            name: NAME,
            reason: format!("{other:?} is not findings, manual or all"),
        }),
    }
}

//! What a response came to ([`Status`]) and what one step did ([`Outcome`]).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Writes made and verified.
    Contained,
    /// Everything was already in place; nothing written.
    AlreadyContained,
    /// Containment was undone during verification and re-applied.
    Contested,
    /// At least one containment step did not hold. Lambda retries.
    Failed,
    /// Not acted on by rule (protected principal, root, other account...). Notify only.
    Refused,
    /// The key (or the trigger) belongs to another account: bad input, nothing changed.
    Rejected,
    /// GuardDuty sample finding: never acted on.
    Sample,
    /// Dry run: the plan was computed, nothing written.
    DryRun,
    /// IAM does not know the key: nothing to contain.
    KeyNotFound,
    /// Containment was lifted by an operator's recorded `killswitch restore`: not re-applied.
    Restored,
}

impl Status {
    /// The key is contained now, whoever did it.
    pub fn is_contained(self) -> bool {
        match self {
            Status::Contained | Status::AlreadyContained | Status::Contested => true,
            Status::Failed
            | Status::Refused
            | Status::Rejected
            | Status::Sample
            | Status::DryRun
            | Status::KeyNotFound
            | Status::Restored => false,
        }
    }

    /// This response wrote containment now (not found in place, not refused, not a dry run).
    pub fn wrote_containment(self) -> bool {
        match self {
            Status::Contained | Status::Contested => true,
            Status::AlreadyContained
            | Status::Failed
            | Status::Refused
            | Status::Rejected
            | Status::Sample
            | Status::DryRun
            | Status::KeyNotFound
            | Status::Restored => false,
        }
    }

    /// Nothing was acted on and nothing will be: the input was refused, rejected, a sample or
    /// an unknown key.
    pub fn not_acted_on(self) -> bool {
        match self {
            Status::Refused | Status::Rejected | Status::Sample | Status::KeyNotFound => true,
            Status::Contained
            | Status::AlreadyContained
            | Status::Contested
            | Status::Failed
            | Status::DryRun
            | Status::Restored => false,
        }
    }

    pub fn headline(self) -> &'static str {
        match self {
            Status::Contained => "CONTAINED",
            Status::AlreadyContained => "ALREADY CONTAINED",
            Status::Contested => "CONTESTED, re-applied",
            Status::Failed => "CONTAINMENT FAILED",
            Status::Refused => "NOT CONTAINED (refused)",
            Status::Rejected => "REJECTED (another account's key)",
            Status::Sample => "SAMPLE finding ignored",
            Status::DryRun => "DRY RUN",
            Status::KeyNotFound => "KEY NOT FOUND",
            Status::Restored => "RESTORED by an operator",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    AlreadyDone,
    WouldDo,
    NotFound,
    Skipped,
    Failed,
}

impl Outcome {
    /// The step's effect is in place (written now or found so).
    pub fn in_place(&self) -> bool {
        match self {
            Outcome::Done | Outcome::AlreadyDone => true,
            Outcome::WouldDo | Outcome::NotFound | Outcome::Skipped | Outcome::Failed => false,
        }
    }
}

impl Status {
    /// Containment did not hold, or was undone: someone must look, so the notice saying so is
    /// never silenced as a duplicate of an earlier one.
    pub fn needs_a_human(self) -> bool {
        match self {
            Status::Failed | Status::Contested => true,
            Status::Contained
            | Status::AlreadyContained
            | Status::Refused
            | Status::Rejected
            | Status::Sample
            | Status::DryRun
            | Status::KeyNotFound
            | Status::Restored => false,
        }
    }
}

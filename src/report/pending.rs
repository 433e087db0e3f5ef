//! The sweep a first report promises: the queue message, and what the command line keeps to
//! run it itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::incident::Incident;
use crate::vocab::{AccountId, Plan, Status};

/// Tags a queue message as a sweep (a follow-up has no `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Sweep,
}

/// The sweep's queue message, and what the command line keeps to run it itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub kind: Kind,
    pub version: u32,
    pub incident: Incident,
    pub plan: Option<Plan>,
    pub member_account: Option<AccountId>,
    pub region_hints: Vec<String>,
    pub contained_at: DateTime<Utc>,
    /// Where the first search's window ended.
    pub first_pass_end: DateTime<Utc>,
    pub first_report_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub first_status: Status,
    pub dry_run: bool,
    #[serde(default)]
    pub operator: Option<String>,
    /// Keys and sessions the first pass found (key, Region minted in): searched again, since
    /// what they did in the attacker's last minutes was not delivered either.
    #[serde(default)]
    pub pivot_keys: Vec<(String, String)>,
    /// Pivots the first report already listed (`Pivot::identity`): not reported again.
    #[serde(default)]
    pub known_pivots: Vec<String>,
    /// Regions the first pass did not read to the end: the sweep re-reads only the last minutes,
    /// so the search cannot be called closed.
    #[serde(default)]
    pub first_pass_gaps: Vec<String>,
}

impl Sweep {
    pub const VERSION: u32 = 1;
}

//! Tabletop drills: plant a canary key, play the attacker, deliver the trigger through the same
//! handler as production, then check and time what happened, and clean up whatever happens.
//!
//! Scenarios are TOML files under `drills/`; see `drills/README.md` for the format.

mod run;
mod scorecard;

pub use run::{Drill, PivotEventAnswer, PivotEvents};
pub use scorecard::{markdown, scorecard};

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sandbox::{AttackerAction, RaceSummary};
use crate::error::Error;
use crate::report::{Report, Status};

/// Permissions of a canary user: what a typical CI user holds, enough for the scripted attacker.
const CANARY_ACTIONS: [&str; 5] = [
    "iam:List*",
    "iam:Get*",
    "sts:GetCallerIdentity",
    "iam:CreateAccessKey",
    "sts:AssumeRole",
];

/// What a racing holder's canary also holds: IAM rights on itself and on others, as a
/// developer's or a deployer's identity often does (and as the holder needs to race).
const RACER_ACTIONS: [&str; 15] = [
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:DeleteUserPermissionsBoundary",
    "iam:UntagUser",
    "iam:UpdateAccessKey",
    "iam:CreateLoginProfile",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:UntagRole",
    "iam:CreateRole",
    "iam:CreateAccessKey",
    "iam:List*",
    "iam:Get*",
    "sts:AssumeRole",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub canary: Canary,
    /// Calls the attacker makes with the leaked credentials before the trigger.
    #[serde(default)]
    pub attacker: Vec<AttackerAction>,
    pub trigger: TriggerSpec,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub tamper: Tamper,
    /// A holder racing containment with the leaked credentials from the trigger on.
    #[serde(default)]
    pub racer: Option<Racer>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Racer {
    /// How long it races, from the trigger's delivery.
    #[serde(default = "default_race_seconds")]
    pub duration_seconds: u64,
    /// How often it reads what IAM shows about its principal.
    #[serde(default = "default_race_interval")]
    pub interval_ms: u64,
    /// `true`: the holder has a role session (the canary's `kind` must be `role`); `false`: a
    /// user's access key.
    #[serde(default)]
    pub session: bool,
    /// The account its backdoor roles trust.
    #[serde(default = "default_outside_account")]
    pub outside_account: String,
}

fn default_race_seconds() -> u64 {
    60
}

fn default_race_interval() -> u64 {
    200
}

fn default_outside_account() -> String {
    "999999999999".into()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// `user` (an IAM user's access key leaks), `role` (a role session leaks), `portal` or
    /// `root`.
    #[serde(default)]
    pub kind: CanaryKind,
    /// List the canary in KILLSWITCH_PROTECTED_PRINCIPALS.
    #[serde(default)]
    pub protected: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryKind {
    #[default]
    User,
    Role,
    /// An IAM Identity Center user's portal credentials (local AWS only: the harness plays
    /// Identity Center's administrator and its portal).
    Portal,
    /// A root access key of the function's account, a member of the organization (local AWS
    /// only: only a root user can create one, and a drill runs as an IAM principal).
    Root,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// A payload from `events/`; its example key, user and role names are replaced by the canary's.
    pub event: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub follow_pivots: bool,
    #[serde(default = "default_verify_delay")]
    pub verify_delay_seconds: u64,
    /// Run the CloudTrail sweep this long after the first report (0: no sweep in the drill).
    #[serde(default)]
    pub sweep_seconds: u64,
    /// Also place the org-level quarantine SCP, through the quarantine role in
    /// `KILLSWITCH_QUARANTINE_ROLE_ARN` / `KILLSWITCH_QUARANTINE_EXTERNAL_ID` (the local AWS
    /// sets up one and names it in `KILLSWITCH_LOCAL_QUARANTINE_*`).
    #[serde(default)]
    pub org_quarantine: bool,
    /// Contain Identity Center sessions, through the Identity Center role in
    /// `KILLSWITCH_IDENTITY_CENTER_ROLE_ARN` / `_EXTERNAL_ID` (the local AWS sets one up and names
    /// it in `KILLSWITCH_LOCAL_IDENTITY_CENTER_*`); `false`: notify-only.
    #[serde(default)]
    pub identity_center: bool,
    /// Also remove the user's direct account assignment.
    #[serde(default)]
    pub remove_assignments: bool,
    /// The first-minute watch after containment (`KILLSWITCH_WATCH_SECONDS`); drills leave it
    /// off unless they rehearse a holder who fights back, to stay short.
    #[serde(default)]
    pub watch_seconds: u64,
    /// The org guard's SCP is in force: on the local AWS the drill attaches it from the
    /// management account first; on a real account it checks that one is attached.
    #[serde(default)]
    pub org_guard: bool,
    /// `KILLSWITCH_ROOT_KEYS`; `delete` also configures the quarantine role (as `org_quarantine`
    /// does), the one root-access-role.yaml lets call `sts:AssumeRoot`.
    #[serde(default)]
    pub root_keys: RootKeysSetting,
}

/// What the function does with a root key in the drill (`KILLSWITCH_ROOT_KEYS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKeysSetting {
    #[default]
    Notify,
    Delete,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            follow_pivots: false,
            verify_delay_seconds: default_verify_delay(),
            sweep_seconds: 0,
            org_quarantine: false,
            identity_center: false,
            remove_assignments: false,
            watch_seconds: 0,
            org_guard: false,
            root_keys: RootKeysSetting::Notify,
        }
    }
}

fn default_verify_delay() -> u64 {
    2
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// CloudTrail lookups for the canary key fail (local AWS only).
    #[serde(default)]
    pub cloudtrail_unavailable: bool,
    /// The function publishes to a topic that does not exist.
    #[serde(default)]
    pub sns_unavailable: bool,
    /// CloudTrail delivers the leaked key's events this many seconds late (local AWS only):
    /// the first search misses what the attacker did last, the sweep must catch it.
    #[serde(default)]
    pub cloudtrail_lag_seconds: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tamper {
    /// The attacker's foothold deletes the deny policy right after containment writes it.
    #[serde(default)]
    pub delete_deny_policy_after_containment: bool,
    /// Before the trigger, the attacker plants a decoy under the deny policy's name: deny-all
    /// with one extra condition that never matches, so it denies nothing.
    #[serde(default)]
    pub plant_decoy_deny_policy: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The report status: contained, contested, refused, sample, ... Unset with a racer: it is
    /// then contested when the holder undid anything, contained otherwise.
    #[serde(default)]
    pub status: Option<Status>,
    /// A call with the leaked credentials is refused afterwards (unchecked when unset).
    #[serde(default)]
    pub key_refused: Option<bool>,
    /// The summary reaches the on-call inbox.
    pub summary_received: bool,
    /// Events (`service:EventName`) the investigation must have found.
    #[serde(default)]
    pub attacker_actions: Vec<String>,
    /// At least this many minted credentials found, and all of them refused afterwards.
    #[serde(default)]
    pub pivots: usize,
    /// The CloudTrail search was complete (`false`: it must say it was not).
    #[serde(default)]
    pub investigation_complete: Option<bool>,
    /// The error the handler returns for Lambda to retry (`KillSwitch.NotifyFailed`, ...);
    /// none expected when absent.
    #[serde(default)]
    pub error: Option<String>,
    /// Phrases the full notice must contain.
    #[serde(default)]
    pub notice_contains: Vec<String>,
    /// The sweep must report at least this many new minted credentials.
    #[serde(default)]
    pub sweep_new_pivots: Option<usize>,
    /// The org quarantine SCP must stand after the drill's response (read back).
    #[serde(default)]
    pub quarantined: Option<bool>,
    /// The portal must refuse the leaked user new credentials afterwards (assignment removed).
    #[serde(default)]
    pub portal_refused: Option<bool>,
    /// With a racer: its last accepted call at most this many seconds after IAM's propagation
    /// lag D has run out (D + this, from the trigger's delivery).
    #[serde(default)]
    pub holder_stops_within_seconds_after_lag: Option<u64>,
    /// With a racer: no credential it held (the leaked one, any it minted) works when the full
    /// report goes out.
    #[serde(default)]
    pub holder_keeps_nothing: Option<bool>,
    /// With a racer: when it undid anything, a CONTESTED page reaches on-call within this many
    /// seconds of its first accepted undo.
    #[serde(default)]
    pub contested_paged_within_seconds: Option<u64>,
}

pub fn load(path: &Path) -> Result<Scenario, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read scenario {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::BadEvent(format!("scenario {}: {e}", path.display())))
}

/// One expectation, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub description: String,
    pub passed: bool,
    pub started_at: DateTime<Utc>,
    /// From trigger delivery to the last containment write.
    pub time_to_containment_ms: Option<u64>,
    /// From trigger delivery to the handler's return (verification, search, notification).
    pub time_to_report_ms: u64,
    pub status: Option<Status>,
    pub checks: Vec<CheckResult>,
    pub cleanup: Vec<String>,
    pub report: Option<Report>,
    /// IAM's propagation lag the drill assumed (the local AWS's D, or 4 s on a real account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// What the racing holder did and kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub racer: Option<RaceSummary>,
    /// The pivot events forwarded to the function while it responded (local AWS, racers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pivot_events: Option<PivotEvents>,
}

/// Where the drill runs.
pub enum Target {
    /// The embedded local AWS (`AWS_ENDPOINT_URL` on 127.0.0.1).
    Local { endpoint: String },
    /// A real sandbox account, chosen explicitly.
    Account { id: String },
}

/// Reads a payload from `events/` and points it at the canary.
fn event_for(
    root: &Path,
    file: &str,
    key: &str,
    principal: &str,
    account: &str,
) -> Result<Value, Error> {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::BadEvent(format!("trigger event {}: {e}", path.display())))?;
    let text = text
        .replace("AKIAIOSFODNN7EXAMPLE", key)
        .replace("ASIAIOSFODNN7EXAMPLE", key)
        .replace("AKIAI44QH8DHBEXAMPLE", key)
        .replace("\"alice\"", &format!("\"{principal}\""))
        .replace("\"ci-deployer\"", &format!("\"{principal}\""))
        .replace("123456789012", account);
    serde_json::from_str(&text)
        .map_err(|e| Error::BadEvent(format!("trigger event {}: {e}", path.display())))
}

fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, N.fetch_add(1, Ordering::SeqCst))
}

fn progress(scenario: &str, phase: &str, detail: &str) {
    eprintln!("[drill] {scenario:<32} {phase:<9} {detail}");
}

/// Scenario files named on the command line, or every `drills/*.toml`.
pub fn scenario_files(given: &[PathBuf], root: &Path) -> Result<Vec<PathBuf>, Error> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let dir = root.join("drills");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

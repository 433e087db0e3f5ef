//! The watchdog (a scheduled rule, `{"killswitch": "watchdog"}`): pages, once per item, each
//! follow-through or sweep the incident table records as due and that never ran — the queue
//! purged, the event source mapping off, the function throttled or killed between writing the
//! record and queueing the message. The queue's alarms watch the queue; this watches the
//! promise, from the record the contain phase and the follow-through wrote.
//!
//! What the record tells (`src/record/`):
//! - a **follow-through** is due `KILLSWITCH_VERIFY_DELAY_SECONDS` after the containment it
//!   follows (`applied.at`, this generation) and has run once `verified_at` is later than that,
//!   or its full notice went out (`notices` holds `full:<incident>`);
//! - a **sweep** is due `KILLSWITCH_SWEEP_MINUTES` after the follow-through queued it (its
//!   `sweep-scheduled:<incident>` claim, with the time it was taken) and has run once `swept_at`
//!   is later than that, or its FINAL notice went out (`sweep:<incident>`).
//!
//! It only reads, and writes nothing but its own once-only claims (`…#watchdog:<what>:<incident>`),
//! so the payload anyone allowed to invoke the function can send is harmless: a second run pages
//! nothing new.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};
use crate::playbook::notify::flood;
use crate::ports::{IncidentStore, Listed, Notifier};
use crate::record::{IncidentRecord, Records};
use crate::report::{defang, open::shell_safe, sanitize_subject, ts};
use crate::vocab::Plan;

/// What is due longer ago than this is history, not a page: the watchdog's first run on an old
/// table does not page its past (`killswitch status` shows it).
pub const LOOK_BACK: TimeDelta = TimeDelta::days(7);

/// Every item of an incident (records and their claims) has an ID starting with this.
const INCIDENT_ITEMS: &str = "incident#";
const SWEEP_SCHEDULED: &str = "sweep-scheduled:";

/// What was due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Due {
    /// The re-check after IAM's propagation window, the CloudTrail search and the full report.
    FollowThrough,
    /// The second CloudTrail search and its FINAL notice.
    Sweep,
}

impl Due {
    pub const fn name(self) -> &'static str {
        match self {
            Due::FollowThrough => "follow-through",
            Due::Sweep => "sweep",
        }
    }
}

/// One item past its due time and its grace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overdue {
    pub what: Due,
    pub incident_id: String,
    pub account: String,
    pub access_key_id: String,
    /// The principal the key's last recorded containment acted on.
    pub principal: Option<String>,
    pub due_at: DateTime<Utc>,
    /// Paged by this run; `false` when an earlier run already did.
    pub paged: bool,
    #[serde(skip)]
    plan: Option<Plan>,
}

/// What one run found.
#[derive(Debug, Default, Serialize)]
pub struct Watch {
    /// Incident records read.
    pub records: usize,
    pub overdue: Vec<Overdue>,
    /// The subject of the held-back notices' summary this run published, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
}

/// Runs the watchdog at `now`. An error means some page could not be sent (or nothing could be
/// read): Lambda reports it, and the function's error alarm pages.
pub async fn run<S: IncidentStore + Notifier>(
    store: &S,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Watch, Error> {
    let records = Records::new(store, config);
    if !records.enabled {
        return Err(Error::Config {
            name: "KILLSWITCH_INCIDENT_TABLE",
            reason: "not set: the watchdog has no record to read".into(),
        });
    }
    let listed = match store.scan(INCIDENT_ITEMS).await {
        Ok(listed) => listed,
        Err(e) => {
            error!(error = %e.chain(), "watchdog: the incident table could not be read");
            let body = format!(
                "The watchdog could not read the incident table, so it cannot tell whether a follow-through or sweep is overdue: {}.\nCheck the table and the function's role (dynamodb:Scan).",
                e.chain()
            );
            // Best effort: the error below reaches the function's error alarm in any case.
            let _ = store
                .publish(
                    "[killswitch] WATCHDOG could not read the incident table",
                    &body,
                )
                .await;
            return Err(e);
        }
    };
    let mut watch = Watch::default();
    let mut unsent = Vec::new();
    for (account, key) in record_keys(&listed) {
        let Some(record) = records.load(&account, &key).await else {
            warn!(account = %account, access_key_id = %key, "watchdog: record unreadable");
            continue;
        };
        watch.records += 1;
        let claims = claims_of(&listed, &record.id());
        for mut item in overdue(&record, &claims, config, now) {
            if let Err(e) = page_once(store, &records, &record, &claims, &mut item, config).await {
                unsent.push(e.chain());
            }
            watch.overdue.push(item);
        }
    }
    // The REJECTED / KEY NOT FOUND notices a flood had held back, summed up once their window
    // closed (the next notice of their kind may not come): the last two hours, as the watchdog
    // runs at least hourly.
    let since = now - chrono::TimeDelta::hours(2);
    for summary in flood::publish_held_back(store, &flood::Limited::ALL, since, now).await {
        if summary.sent {
            watch.held_back = Some(format!(
                "{} {:?} notice(s) held back in the window from {}",
                summary.held_back, summary.kind, summary.window_start
            ));
        } else {
            unsent.push(format!(
                "the summary of {} held-back {:?} notice(s) could not be sent",
                summary.held_back, summary.kind
            ));
        }
    }
    info!(
        records = watch.records,
        overdue = watch.overdue.len(),
        "watchdog"
    );
    if unsent.is_empty() {
        Ok(watch)
    } else {
        Err(Error::NotifyFailed(unsent.join("; ")))
    }
}

/// The (account, key) of every incident record listed (`incident#ACCOUNT#KEY`).
fn record_keys(listed: &[Listed]) -> Vec<(AccountId, AccessKeyId)> {
    listed
        .iter()
        .filter_map(|l| {
            let mut parts = l.id.split('#');
            let (Some("incident"), Some(account), Some(key), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            Some((
                AccountId::parse(account).ok()?,
                AccessKeyId::parse(key).ok()?,
            ))
        })
        .collect()
}

/// The claims taken under one record (`<record id>#g<generation>#<what>`): (what, when).
fn claims_of(listed: &[Listed], record_id: &str) -> Vec<(String, Option<DateTime<Utc>>)> {
    let prefix = format!("{record_id}#g");
    listed
        .iter()
        .filter_map(|l| {
            let (_generation, what) = l.id.strip_prefix(&prefix)?.split_once('#')?;
            Some((what.to_owned(), l.claimed_at))
        })
        .collect()
}

/// What the record says was due and never ran, past its grace, within [`LOOK_BACK`].
pub fn overdue(
    record: &IncidentRecord,
    claims: &[(String, Option<DateTime<Utc>>)],
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<Overdue> {
    let grace = delta(config.jobs.watchdog_grace);
    let late = |due: DateTime<Utc>| due + grace <= now && due >= now - LOOK_BACK;
    let sent = |claim: String| record.notices.contains(&claim);
    let plan = record.applied.as_ref().map(|a| a.plan.clone());
    let item = |what, incident_id: &str, due_at| Overdue {
        what,
        incident_id: incident_id.to_owned(),
        account: record.account.clone(),
        access_key_id: record.access_key_id.clone(),
        principal: plan.as_ref().map(Plan::principal),
        due_at,
        paged: false,
        plan: plan.clone(),
    };
    let mut out = Vec::new();
    // A containment since restored is history: the restore started a new generation.
    if let Some(a) = record
        .applied
        .as_ref()
        .filter(|a| a.generation == record.generation)
    {
        let due = a.at + delta(config.verify_delay);
        let ran = record.verified_at.is_some_and(|v| v >= a.at)
            || sent(format!("full:{}", a.incident_id));
        if !ran && late(due) {
            out.push(item(Due::FollowThrough, &a.incident_id, due));
        }
    }
    for (what, taken) in claims {
        let (Some(incident_id), Some(taken)) = (what.strip_prefix(SWEEP_SCHEDULED), taken) else {
            continue;
        };
        let due = *taken + delta(config.sweep_after);
        let ran =
            record.swept_at.is_some_and(|s| s >= *taken) || sent(format!("sweep:{incident_id}"));
        if !ran && late(due) {
            out.push(item(Due::Sweep, incident_id, due));
        }
    }
    out
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Pages `item` unless an earlier run did (its claim is listed, or taken first by another run).
async fn page_once<S: IncidentStore + Notifier>(
    store: &S,
    records: &Records<'_, S>,
    record: &IncidentRecord,
    claims: &[(String, Option<DateTime<Utc>>)],
    item: &mut Overdue,
    config: &Config,
) -> Result<(), Error> {
    let claim = format!("watchdog:{}:{}", item.what.name(), item.incident_id);
    if claims.iter().any(|(what, _)| *what == claim) || !records.claim(Some(record), &claim).await {
        return Ok(());
    }
    let (subject, body) = page(item, config);
    match store.publish(&subject, &body).await {
        Ok(()) => {
            warn!(what = item.what.name(), incident_id = %item.incident_id, access_key_id = %item.access_key_id, "overdue: paged");
            item.paged = true;
            Ok(())
        }
        Err(e) => {
            // The next run pages it again.
            records.release(Some(record), &claim).await;
            Err(e)
        }
    }
}

/// The page for one overdue item: what, whose, since when, and what to run by hand.
fn page(item: &Overdue, config: &Config) -> (String, String) {
    let key = &item.access_key_id;
    let who = item
        .principal
        .as_deref()
        .unwrap_or("principal not recorded");
    let subject = sanitize_subject(&format!(
        "[killswitch] OVERDUE {}: {key} ({who}) acct {}",
        item.what.name(),
        item.account
    ));
    let (missing, why) = match item.what {
        Due::FollowThrough => (
            "the follow-through never ran: containment was NOT read back after IAM's propagation window, CloudTrail was NOT searched and no full report went out",
            format!("due {}s after containment", config.verify_delay.as_secs()),
        ),
        Due::Sweep => (
            "the sweep never ran: the second CloudTrail search, which reads the calls Event history delivers late (the attacker's last minutes before detection), did NOT run, and the search is NOT closed",
            format!(
                "due {} minutes after the first report",
                config.sweep_after.as_secs() / 60
            ),
        ),
    };
    let body = format!(
        "OVERDUE: {missing}.\n\nIncident: {}\nKey: {key} (account {})\nPrincipal: {who}\nDue at: {} ({why}); the watchdog allows {} minutes more before paging.\n\nRun it by hand (it reads containment back, re-applies it if undone, searches CloudTrail over the look-back and reports):\n  {}\n  killswitch status --access-key-id {key}\n\nThen find out why it did not run: the follow-up queue and its dead-letter queue, the function's event source mapping (enabled?), its reserved concurrency (not 0) and its errors; PurgeQueue or DeleteMessage calls by anyone but the responder in CloudTrail. This page is sent once per incident.",
        defang(&item.incident_id),
        item.account,
        ts(item.due_at),
        config.jobs.watchdog_grace.as_secs() / 60,
        respond_command(item),
    );
    (subject, body)
}

/// `killswitch respond` for the key, naming the role and session a session key needs (IAM does
/// not know whose an `ASIA…` key is).
fn respond_command(item: &Overdue) -> String {
    let mut command = format!(
        "killswitch respond --access-key-id {} --account-id {}",
        item.access_key_id, item.account
    );
    let (role, session) = match &item.plan {
        Some(Plan::Role { role, session, .. }) => (
            Some(role.as_str()),
            session
                .as_deref()
                .map(|s| s.split_once(':').map_or(s, |(_, name)| name)),
        ),
        Some(Plan::Portal { role, user, .. }) => (Some(role.as_str()), Some(user.as_str())),
        Some(Plan::User { .. }) | None => (None, None),
    };
    if let Some(role) = role.and_then(shell_safe) {
        command.push_str(&format!(" --role-name {role}"));
        if let Some(session) = session.and_then(shell_safe) {
            command.push_str(&format!(" --session-name {session}"));
        }
    }
    command.push_str(&format!(
        " --reason \"watchdog: {} overdue\"",
        item.what.name()
    ));
    command
}

//! Floods cannot page on-call to death. Anyone allowed `lambda:InvokeFunction` can send a
//! thousand made-up keys or forged findings; each would page REJECTED or KEY NOT FOUND, and a
//! pager that rings a thousand times is a pager on-call mutes, with the real CONTAINED among
//! them. So those two kinds, and only those, page at most [`PER_WINDOW`] times per kind in each
//! fixed [`WINDOW_SECONDS`] window; the rest are held back, counted, and summarised in one notice
//! once the window has closed: sent with the next notice of the kind that is allowed out, or by
//! whoever calls [`publish_held_back`] (a scheduled check can). CONTAINED, FAILED, CONTESTED,
//! REFUSED and every other notice are never limited.
//!
//! All of it lives in the incident table, shared by every copy of the function: the allowed
//! notices are slots (`notices#KIND#START#N`, N < [`PER_WINDOW`]), a full window is marked once
//! so a flood costs one read per notice; each held-back notice takes the next of a contiguous
//! run of slots (`…#held#N`, and `…#forged#N` too when it looked forged), so the count is
//! exact whatever the concurrency, and the last key IDs are kept beside a hint of where the run
//! ends. Without a table nothing is limited: the template always sets one, and the command line
//! handles one delivery per process.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::Error;
use crate::ports::{IncidentStore, Notifier};
use crate::report::{Report, Status, sanitize_subject, ts};
use crate::vocab::Step;

/// Pages of one kind allowed out per window.
pub const PER_WINDOW: u32 = 5;
/// The window, fixed (10:00-10:10, 10:10-10:20, …) so that every copy agrees on it.
pub const WINDOW_SECONDS: i64 = 600;
/// A window is summarised this long after it closed: a held-back notice counted as it closed
/// has landed by then.
const GRACE_SECONDS: i64 = 60;
/// How far back the next allowed notice looks for windows not summarised yet.
const LOOK_BACK_SECONDS: i64 = 3600;
/// Slots and counts expire (the table's TTL) this long after their window: a summary is due
/// long before.
const KEEP_SECONDS: i64 = 7 * 24 * 3600;
/// Key IDs a summary names.
const LAST_KEYS: usize = 10;

/// A kind of notice a flood of bogus invocations causes, and so the only kinds limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    Rejected,
    KeyNotFound,
}

impl Limited {
    pub const ALL: [Limited; 2] = [Limited::Rejected, Limited::KeyNotFound];

    /// The limited kind of a status, if it is one.
    pub fn of(status: Status) -> Option<Self> {
        match status {
            Status::Rejected => Some(Limited::Rejected),
            Status::KeyNotFound => Some(Limited::KeyNotFound),
            Status::Contained
            | Status::AlreadyContained
            | Status::Contested
            | Status::Failed
            | Status::Refused
            | Status::Sample
            | Status::DryRun
            | Status::Restored => None,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Limited::Rejected => "rejected",
            Limited::KeyNotFound => "key-not-found",
        }
    }

    fn headline(self) -> &'static str {
        match self {
            Limited::Rejected => "REJECTED",
            Limited::KeyNotFound => "KEY NOT FOUND",
        }
    }
}

/// Why a held-back notice was not sent (the report's notification).
pub const HELD_BACK: &str = "held back: more than 5 notices of this kind (REJECTED or KEY NOT FOUND) in this 10-minute window, which looks like a flood; it is counted, and one summary with the key IDs follows once the window has closed";

/// A REJECTED whose payload looked forged (a finding its source does not hold): someone who
/// can invoke the function sent it, which a summary must say apart from the rest.
pub fn looked_forged(report: &Report) -> bool {
    report.status == Status::Rejected
        && report
            .steps
            .iter()
            .any(|s| s.step == Step::CheckFinding && s.outcome == crate::report::Outcome::Skipped)
}

/// One window of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    kind: Limited,
    /// Unix seconds, a multiple of [`WINDOW_SECONDS`].
    start: i64,
}

impl Window {
    fn at(kind: Limited, t: DateTime<Utc>) -> Self {
        Window {
            kind,
            start: t.timestamp().div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS,
        }
    }

    fn item(&self, what: &str) -> String {
        format!("notices#{}#{}#{what}", self.kind.id(), self.start)
    }

    fn end(&self) -> i64 {
        self.start + WINDOW_SECONDS
    }

    fn expires(&self) -> i64 {
        self.end() + KEEP_SECONDS
    }

    fn time(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }
}

/// What a notice of a limited kind may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Send,
    /// Counted in its window; the summary will say it.
    HeldBack,
}

/// Whether a notice of `kind` may go out now. A store that cannot be asked lets it out: better
/// a page too many than one lost.
pub async fn admit<S: IncidentStore>(
    store: &S,
    kind: Limited,
    now: DateTime<Utc>,
    key: &str,
    forged: bool,
) -> Admission {
    let window = Window::at(kind, now);
    match allowed(store, &window).await {
        Ok(true) => Admission::Send,
        Ok(false) => {
            if let Err(e) = count(store, &window, key, forged).await {
                warn!(error = %e.chain(), kind = kind.id(), "a held-back notice could not be counted");
            }
            info!(
                step = "notify",
                outcome = "held back",
                kind = kind.id(),
                "flood limit"
            );
            Admission::HeldBack
        }
        Err(e) => {
            warn!(error = %e.chain(), kind = kind.id(), "notice limit unreadable; sending");
            Admission::Send
        }
    }
}

/// Takes one of the window's allowed slots, if one is free.
async fn allowed<S: IncidentStore>(store: &S, window: &Window) -> Result<bool, Error> {
    let full = window.item("full");
    if store.load_record(&full).await?.is_some() {
        return Ok(false);
    }
    for n in 0..PER_WINDOW {
        if store
            .claim_slot(&window.item(&n.to_string()), window.expires())
            .await?
        {
            return Ok(true);
        }
    }
    store.save_record(&full, "full").await?;
    Ok(false)
}

/// Where a window's run of held-back slots ends (a hint: it may lag, never lead), and the last
/// key IDs held back.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    next: u32,
    #[serde(default)]
    next_forged: u32,
    #[serde(default)]
    last: Vec<String>,
    /// The exact counts (held back, looked forged), once the summary has taken them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counted: Option<(u32, u32)>,
}

async fn tally<S: IncidentStore>(store: &S, window: &Window) -> Result<Tally, Error> {
    Ok(store
        .load_record(&window.item("held"))
        .await?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// The first free slot of a contiguous run from `from` on, taken: slots are only ever taken
/// first-free-first, so the run has no holes and the taken slot's number is the count before.
async fn take_next<S: IncidentStore>(
    store: &S,
    window: &Window,
    run: &str,
    from: u32,
) -> Result<u32, Error> {
    let mut n = from;
    while !store
        .claim_slot(&window.item(&format!("{run}#{n}")), window.expires())
        .await?
    {
        n += 1;
    }
    Ok(n)
}

/// Counts one held-back notice in its window (and in the forged run, when it looked forged),
/// and keeps its key among the last ones.
async fn count<S: IncidentStore>(
    store: &S,
    window: &Window,
    key: &str,
    forged: bool,
) -> Result<(), Error> {
    let mut t = tally(store, window).await?;
    let n = take_next(store, window, "held", t.next).await?;
    t.next = t.next.max(n + 1);
    if forged {
        let f = take_next(store, window, "forged", t.next_forged).await?;
        t.next_forged = t.next_forged.max(f + 1);
    }
    // Concurrent writers may drop one another's key from this list (the last write wins): it
    // names the last few, while the count above is exact.
    t.last.push(key.to_owned());
    let cut = t.last.len().saturating_sub(LAST_KEYS);
    t.last.drain(..cut);
    let text = serde_json::to_string(&t).unwrap_or_default();
    store.save_record(&window.item("held"), &text).await
}

/// One window's summary, as sent (or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBackSummary {
    pub kind: Limited,
    pub window_start: DateTime<Utc>,
    pub held_back: u32,
    pub looked_forged: u32,
    pub last_keys: Vec<String>,
    pub sent: bool,
}

/// Sends one summary for each window of `kinds` that closed between `since` and `now` (minus a
/// minute's grace) with notices held back and no summary yet; each is claimed first, so every
/// copy and every caller together send it once. For the next allowed notice and for a
/// scheduled check alike.
pub async fn publish_held_back<H: IncidentStore + Notifier>(
    home: &H,
    kinds: &[Limited],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<HeldBackSummary> {
    let mut sent = Vec::new();
    let last_closed = now.timestamp() - GRACE_SECONDS;
    for &kind in kinds {
        let mut window = Window::at(kind, since);
        while window.end() <= last_closed {
            match summarise(home, &window).await {
                Ok(Some(summary)) => sent.push(summary),
                Ok(None) => {}
                Err(e) => warn!(error = %e.chain(), kind = kind.id(), "held-back summary not sent"),
            }
            window.start += WINDOW_SECONDS;
        }
    }
    sent
}

/// The summary of one closed window, if notices were held back in it and nobody sent it yet.
async fn summarise<H: IncidentStore + Notifier>(
    home: &H,
    window: &Window,
) -> Result<Option<HeldBackSummary>, Error> {
    let Some(text) = home.load_record(&window.item("held")).await? else {
        return Ok(None);
    };
    let mut t: Tally = serde_json::from_str(&text).unwrap_or_default();
    let claim = window.item("summary");
    if !home.claim_slot(&claim, window.expires()).await? {
        return Ok(None);
    }
    let (held_back, looked_forged) = match counted(home, window, &mut t).await {
        Ok(counts) => counts,
        Err(e) => {
            home.release(&claim).await?;
            return Err(e);
        }
    };
    let mut summary = HeldBackSummary {
        kind: window.kind,
        window_start: Window::time(window.start),
        held_back,
        looked_forged,
        last_keys: t.last,
        sent: false,
    };
    let (subject, body) = words(&summary, Window::time(window.end()));
    match home.publish(&subject, &body).await {
        Ok(()) => {
            info!(step = "notify", outcome = "done", subject = %subject, "held-back summary");
            summary.sent = true;
        }
        Err(e) => {
            // Not told: the next allowed notice, or the next scheduled check, tries again.
            warn!(error = %e.chain(), "held-back summary could not be published");
            home.release(&claim).await?;
        }
    }
    Ok(Some(summary))
}

/// A closed window's exact counts. Taking the first free slot of each run counts it (the window
/// is closed: the slot taken here is never wanted again); the counts are kept in the tally, so a
/// summary tried again after a failed publish counts the same.
async fn counted<S: IncidentStore>(
    store: &S,
    window: &Window,
    t: &mut Tally,
) -> Result<(u32, u32), Error> {
    if let Some(counts) = t.counted {
        return Ok(counts);
    }
    let held_back = take_next(store, window, "held", t.next).await?;
    let looked_forged = match window.kind {
        Limited::Rejected => take_next(store, window, "forged", t.next_forged).await?,
        Limited::KeyNotFound => 0,
    };
    t.counted = Some((held_back, looked_forged));
    let text = serde_json::to_string(&t).unwrap_or_default();
    store.save_record(&window.item("held"), &text).await?;
    Ok((held_back, looked_forged))
}

/// The summary's subject and body.
fn words(s: &HeldBackSummary, end: DateTime<Utc>) -> (String, String) {
    let what = s.kind.headline();
    let subject = sanitize_subject(&format!(
        "[killswitch] {} {what} notices held back ({} to {} UTC)",
        s.held_back,
        s.window_start.format("%H:%M"),
        end.format("%H:%M")
    ));
    let mut body = format!(
        "killswitch held back {} {what} notices between {} and {}: on-call is paged at most {PER_WINDOW} times per kind in each {}-minute window, and more than that looks like a flood of invocations. Nothing was changed for any of them.\n\n",
        s.held_back,
        ts(s.window_start),
        ts(end),
        WINDOW_SECONDS / 60
    );
    body.push_str(match s.kind {
        Limited::Rejected => "REJECTED: each named another account's key, or a finding its source does not hold.\n",
        Limited::KeyNotFound => "KEY NOT FOUND: each named a key IAM does not know (a typo, a deleted key, or someone trying made-up keys); none was investigated.\n",
    });
    if s.looked_forged > 0 {
        body.push_str(&format!(
            "\n{} of them LOOKED FORGED (a finding its source does not hold): someone who can invoke the function sent them. Find the lambda Invoke calls in CloudTrail and check who holds lambda:InvokeFunction.\n",
            s.looked_forged
        ));
    }
    if !s.last_keys.is_empty() {
        body.push_str(&format!(
            "\nLast key IDs held back (newest last): {}\n",
            s.last_keys.join(", ")
        ));
    }
    body.push_str(
        "\nEach one's report is in the function's log (CloudWatch Logs: search for the key ID).\n",
    );
    (subject, body)
}

/// The summaries the next allowed notice of `kind` sends: the last hour's closed windows.
pub async fn after_allowed<H: IncidentStore + Notifier>(
    home: &H,
    kind: Limited,
    now: DateTime<Utc>,
) -> Vec<HeldBackSummary> {
    publish_held_back(
        home,
        &[kind],
        now - TimeDelta::seconds(LOOK_BACK_SECONDS),
        now,
    )
    .await
}

//! The `LookupEvents` budget: at most 2 calls in any 1-second window per account and Region,
//! shared by everything that searches at once (the leaked key, its pivots, other incidents of
//! the same invocation, and other invocations through the incident store).
//!
//! Time is cut into slots of [`SLOT`]; a call starts only at the start of a slot it holds, and
//! a slot is held by one call at most. Three calls then span at least two slots (1.05 s), so no
//! 1-second window sees a third, even with 50 ms of arrival jitter or clock skew between
//! invocations. Within one process slots are handed out in order; across processes each slot is
//! a conditional put in the incident store (with a TTL), so two invocations never share one.
//! Exact 500 ms pacing is not used: a strict sliding-window limiter throttles it as soon as the
//! network delays one call more than the next.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tracing::warn;

use crate::ports::IncidentStore;

/// Half of 1 s plus 25 ms: two slots per 1.05 s, 95 % of the documented ceiling.
pub const SLOT: Duration = Duration::from_millis(525);
const SLOT_MS: i64 = 525;
/// A call that would start later than this into its slot gives the slot up (a late start
/// would bring it closer than 1 s to the call two slots on).
const LATE: Duration = Duration::from_millis(20);
/// Time left for the store's conditional put before the slot it claims starts, at least; it
/// grows to twice the slowest claim seen (up to `MAX_LEAD_MS`).
const CLAIM_LEAD_MS: u64 = 40;
const MAX_LEAD_MS: u64 = 500;
/// Slots missed in a row (the claim came back after the slot began) before the shared slots are
/// given up for pacing within this invocation.
const MAX_LATE_IN_A_ROW: u32 = 8;
/// Slot items expire (DynamoDB TTL) long after any search that could read them.
const SLOT_TTL_SECS: i64 = 3600;

/// One process's view of the budget. Make one per invocation; share it by reference.
pub struct Pacer {
    base_ms: i64,
    base: Instant,
    next: Mutex<HashMap<(String, String), i64>>,
    shared_failed: AtomicBool,
    lead_ms: AtomicU64,
    late_in_a_row: AtomicU32,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    pub fn new() -> Self {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            base_ms,
            base: Instant::now(),
            next: Mutex::new(HashMap::new()),
            shared_failed: AtomicBool::new(false),
            lead_ms: AtomicU64::new(CLAIM_LEAD_MS),
            late_in_a_row: AtomicU32::new(0),
        }
    }

    fn ms_at(&self, at: Instant) -> i64 {
        self.base_ms + i64::try_from(at.duration_since(self.base).as_millis()).unwrap_or(i64::MAX)
    }

    fn slot_start(&self, slot: i64, phase: i64) -> Instant {
        let offset = u64::try_from(slot * SLOT_MS + phase - self.base_ms).unwrap_or(0);
        self.base + Duration::from_millis(offset)
    }

    /// Waits for a slot of its own in `region` of `account`, not before `not_before`, and
    /// returns when it starts; `None` when no slot starts before `deadline`.
    pub async fn acquire<S: IncidentStore>(
        &self,
        store: Option<&S>,
        account: &str,
        region: &str,
        not_before: Instant,
        deadline: Instant,
    ) -> Option<Instant> {
        loop {
            let store = store.filter(|_| !self.shared_failed.load(Ordering::Relaxed));
            let lead = if store.is_some() {
                Duration::from_millis(self.lead_ms.load(Ordering::Relaxed))
            } else {
                Duration::ZERO
            };
            let phase = phase_ms(region);
            let earliest = self.ms_at((Instant::now() + lead).max(not_before)) - phase;
            let slot = {
                let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                let n = next
                    .entry((account.to_owned(), region.to_owned()))
                    .or_insert(0);
                let slot = (earliest + SLOT_MS - 1).div_euclid(SLOT_MS).max(*n);
                *n = slot + 1;
                slot
            };
            let start = self.slot_start(slot, phase);
            if start >= deadline {
                return None;
            }
            if let Some(store) = store {
                let expires = slot * SLOT_MS / 1000 + SLOT_TTL_SECS;
                let asked = Instant::now();
                let claimed = store
                    .claim_slot(&slot_id(account, region, slot), expires)
                    .await;
                let took = u64::try_from(asked.elapsed().as_millis()).unwrap_or(MAX_LEAD_MS);
                self.lead_ms
                    .fetch_max((2 * took).min(MAX_LEAD_MS), Ordering::Relaxed);
                match claimed {
                    Ok(true) => {}
                    // Another invocation holds it: try the next one.
                    Ok(false) => continue,
                    Err(e) => {
                        // Searching goes on, paced in this process only; throttles from other
                        // invocations are then met with back-off.
                        warn!(error = %e.chain(), "LookupEvents budget: the shared slots could not be claimed; pacing within this invocation only");
                        self.shared_failed.store(true, Ordering::Relaxed);
                    }
                }
            }
            tokio::time::sleep_until(start).await;
            if Instant::now() > start + LATE {
                if store.is_some()
                    && self.late_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_LATE_IN_A_ROW
                {
                    warn!(
                        "LookupEvents budget: the shared slots keep coming back too late; pacing within this invocation only"
                    );
                    self.shared_failed.store(true, Ordering::Relaxed);
                }
                continue;
            }
            self.late_in_a_row.store(0, Ordering::Relaxed);
            return Some(start);
        }
    }

    /// Whether pacing across invocations had to be given up (the store failed).
    pub fn shared_failed(&self) -> bool {
        self.shared_failed.load(Ordering::Relaxed)
    }
}

/// Where a Region's slots start within the 525 ms: spread by name, the same in every process.
/// All Regions on one boundary would wake together, and the last ones served would start late
/// and give their slots up.
fn phase_ms(region: &str) -> i64 {
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let hash = region.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::try_from(hash % SLOT_MS.unsigned_abs()).unwrap_or(0)
}

/// The store item that holds one slot.
pub fn slot_id(account: &str, region: &str, slot: i64) -> String {
    format!("lookup#{account}#{region}#{slot}")
}

/// What a search needs to take its share: the pacer, the store it claims slots in (when the
/// deployment has one) and the account whose CloudTrail it reads.
pub struct Budget<'a, S> {
    pub pacer: &'a Pacer,
    pub store: Option<&'a S>,
    pub account: &'a str,
}

impl<S> Clone for Budget<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Budget<'_, S> {}

impl<S: IncidentStore> Budget<'_, S> {
    pub async fn acquire(
        &self,
        region: &str,
        not_before: Instant,
        deadline: Instant,
    ) -> Option<Instant> {
        self.pacer
            .acquire(self.store, self.account, region, not_before, deadline)
            .await
    }
}

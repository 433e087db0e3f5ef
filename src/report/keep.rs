//! Which pivots a report lists when there are more than it can hold.

use super::{Activity, PivotReport};
use crate::analysis::{MAX_COVERED_PIVOTS, MAX_PIVOTS};

impl Activity {
    /// Keeps a pivot unless it is already listed. Pivots the leaked user's deny already covers are
    /// counted but listed only up to `MAX_COVERED_PIVOTS`, so a flood of them never pushes out a
    /// key, a session, a password or a trust change (those are all kept, up to `MAX_PIVOTS`).
    pub fn keep_pivot(&mut self, pivot: crate::analysis::Pivot) {
        let id = format!("{:?}", pivot.identity());
        if self.pivot_ids.contains(&id) {
            return;
        }
        let keep = if pivot.kind.covered_by_user_deny() {
            // Counted each time past the listed ones (repeats included): an upper bound.
            self.covered_pivots += 1;
            self.covered_pivots <= MAX_COVERED_PIVOTS
        } else if self.pivots.len() < MAX_PIVOTS {
            true
        } else {
            self.pivots_not_listed += 1;
            false
        };
        if keep {
            self.pivot_ids.insert(id);
            self.pivots.push(PivotReport {
                pivot,
                contain_with: serde_json::Value::Null,
                activity: None,
                containment: None,
            });
        }
    }
}

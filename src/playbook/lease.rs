//! A lease in the incident table: writers of one shared document that has no conditional write
//! (an account's quarantine SCP, its Identity Center deny policy) take turns, so two
//! read-modify-writes at once cannot drop each other's entry.

use std::time::Duration;

use chrono::Utc;

use crate::ports::IncidentStore;

/// How long a writer holds a lease, and how long another waits for it.
const LEASE_SECONDS: i64 = 60;
const LEASE_WAIT: Duration = Duration::from_secs(10);

pub struct Lease<'a, S: IncidentStore> {
    held: Option<(&'a S, String)>,
}

impl<'a, S: IncidentStore> Lease<'a, S> {
    /// Waits up to `LEASE_WAIT` for lease `id`, asking again every `poll`; a holder that died
    /// leaves it until it expires, so after that the write goes ahead on the read-back alone.
    /// Without an incident table (`None`) there is nothing to take.
    pub async fn take(store: Option<&'a S>, id: String, poll: Duration) -> Self {
        let Some(store) = store else {
            return Self { held: None };
        };
        let until = tokio::time::Instant::now() + LEASE_WAIT;
        loop {
            let expires = Utc::now().timestamp() + LEASE_SECONDS;
            match store.claim_slot(&id, expires).await {
                Ok(true) => {
                    return Self {
                        held: Some((store, id)),
                    };
                }
                Ok(false) if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(poll).await;
                }
                _ => return Self { held: None },
            }
        }
    }

    pub async fn give_back(self) {
        if let Some((store, id)) = self.held {
            let _ = store.release(&id).await;
        }
    }
}

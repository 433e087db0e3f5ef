#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Temporary (helper h4): runs tests/it/org_guard.rs until tests/it/main.rs declares it.
#[path = "it/org_guard.rs"]
mod org_guard;

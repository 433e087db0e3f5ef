//! One integration-test binary: behaviour over a recording fake, adapter request mapping over
//! smithy mocks, end-to-end over the local AWS (scripts/local-aws.sh), the template tie-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adapters;
mod analysis;
mod attacker;
mod chat;
mod cli;
mod docs;
// The end-to-end tests drive the drill harness (`--features drill`, as the test command does).
#[cfg(feature = "drill")]
mod e2e;
mod faults;
mod flood;
mod forged;
mod fuzz;
mod health_codes;
mod heartbeat;
mod investigation;
mod oncall_view;
mod org_guard;
mod permissions;
mod phases;
mod pivot_events;
mod playbook;
mod portal;
mod quarantine;
mod races;
mod readme;
mod records;
mod restore_refusals;
mod restore_view;
mod role_quota;
mod root_keys;
mod sealed;
mod security_hub_v2;
mod support;
mod template_functions;
mod template_guard;
mod triggers;
mod watch;
mod watchdog;
mod workflow;

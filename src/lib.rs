//! killswitch: contain a leaked AWS access key within seconds, verify, investigate, notify.
//!
//! Layers, bottom up. A module imports only from its own layer or below, never in a cycle
//! (`scripts/check_structure.py` reads these lines and fails the test command otherwise):
//!
//! 0. vocab: the words (IDs, `Arn`, `Plan`, `Step`, `Status`, `Outcome`); imports nothing.
//! 1. error, policy, progress: the one error type, the policy documents, progress lines.
//! 2. config, incident: settings from the environment; the incident parsed at the edge.
//! 3. ports, trigger: what the core needs from the cloud; payloads turned into incidents.
//! 4. pacing, analysis: the `LookupEvents` budget; what CloudTrail events mean.
//! 5. report: what happened, as data, and every line a human reads of it.
//! 6. investigation, record: the CloudTrail search; the incident record.
//! 7. playbook: contain, then follow through (generic over the ports).
//! 8. handler, oncall, doctor: the Lambda entry (only it names `lambda_runtime`); status and
//!    restore; the deployed stack's preflight (below aws, which implements its reads).
//! 9. aws: the adapters, the only code importing `aws_sdk_*`; only the wiring names them.
//! 10. cli, drill: the command line; tabletop drills (feature `drill`, never deployed).
//!
//! `main.rs` wires both modes (the Lambda runtime, `killswitch respond`).

// Functions stay short and matches name every kind: a new kind of plan, step or status fails to
// compile where it must be handled (the test command denies warnings).
#![warn(clippy::too_many_lines, clippy::wildcard_enum_match_arm)]

pub mod analysis;
pub mod aws;
pub mod cli;
pub mod config;
pub mod doctor;
#[cfg(feature = "drill")]
pub mod drill;
pub mod error;
pub mod handler;
pub mod incident;
pub mod investigation;
pub mod oncall;
pub mod pacing;
pub mod playbook;
pub mod policy;
pub mod ports;
pub mod progress;
pub mod record;
pub mod report;
pub mod trigger;
pub mod vocab;

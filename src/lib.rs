//! killswitch: contain a leaked AWS access key within seconds, verify, investigate, notify.
//!
//! Layout (wiring → edge → core → adapters):
//! - `main.rs`: wiring for both modes (Lambda runtime, `killswitch respond`).
//! - [`cli`], [`handler`], [`trigger`]: the edge; only `handler` names `lambda_runtime`.
//! - [`oncall`]: operator commands (status, restore); `drill` (tabletop drills, feature `drill`,
//!   never in the deployed package).
//! - [`incident`], [`playbook`] (contain, then follow through), [`record`], [`investigation`],
//!   [`analysis`], [`policy`], [`report`], [`config`], [`error`]: the core, generic
//!   over the [`ports`].
//! - [`aws`]: the adapters, the only code importing `aws_sdk_*`.

pub mod analysis;
pub mod aws;
pub mod cli;
pub mod config;
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

//! Test doubles and fixtures: `FakeCloud`, an in-memory AWS that records every call and can fail
//! any of them (its state in `cloud`, one module per port it plays), and the app's shapes around
//! it (`fixtures`).

mod cloud;
mod cloudtrail;
mod fixtures;
mod iam;
mod identity_center;
mod notify;
mod organization;
mod root;
mod sources;
mod store;

pub use cloud::*;
pub use cloudtrail::*;
pub use fixtures::*;
pub use identity_center::*;
pub use sources::guardduty_detail_of;

//! The words every other module speaks, at the bottom of the crate: it imports nothing else of
//! it. Key and account IDs, Regions, a parsed [`Arn`], the kinds of containment ([`Plan`]), the
//! steps of a response ([`Step`]) and what each step and response came to ([`Outcome`],
//! [`Status`]). A per-kind fact is a method here, so adding a kind fails to compile exactly
//! where it must be handled.
//!
//! The incident record persists [`Plan`] (and [`Deny`]): their serde names are frozen.

mod arn;
mod ids;
mod plan;
mod status;
mod step;

pub use arn::Arn;
pub use ids::{AccessKeyId, AccountId, KeyKind, is_region_name, truncate};
pub use plan::{Deny, IDENTITY_CENTER_ROLE_PREFIX, Plan, permission_set_name};
pub use status::{Outcome, Status};
pub use step::Step;

/// A value that does not parse, in words a person fixes it with. The crate's error type turns
/// it into a bad-event error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

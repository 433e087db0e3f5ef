//! On-call commands: `status` (what killswitch did to a key) and `restore` (undo exactly that).
//! They run with the engineer's own credentials; their write permissions are never granted to
//! the function.
//!
//! A restore must not re-arm the key's holder: without `--force` it refuses to lift a user's deny
//! while the user has an Active key, a console password, an MFA device or another credential
//! created (enabled) since the incident began by IAM's dates (the holder's persistence), while a
//! credential the incident's pivots name is still live (a key the holder minted, a user it
//! created, a password it set, a session, a trust policy it changed), while a change IAM keeps no
//! date for still holds (`changes`: read from the holder's calls in CloudTrail), or when the named
//! user is not IAM's owner of the key. Reactivating the leaked key itself is its own flag. A role
//! restore removes this incident's session only (inline or in killswitch's managed fallback), and
//! lifts a role-wide cutoff only when no other open incident relies on it.

mod action;
mod assess;
mod changes;
mod notice;
mod permissions;
mod pivots;
mod restore;
mod role;
mod status;
mod user;

pub use action::RestoreAction;
pub use assess::{Assessment, RestoreRequest, assess};
pub use notice::refused_next_steps;
pub use permissions::OPERATOR_PERMISSIONS;
pub use restore::{Restored, restore};
pub use status::{ContainedBy, KeyState, PortalState, QuarantineState, status};

/// The longest a role session can last (`MaxSessionDuration` up to 12 h).
pub const MAX_ROLE_SESSION_HOURS: i64 = 12;

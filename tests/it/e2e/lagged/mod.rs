//! End to end with IAM's propagation window: the local AWS authorizes every call on IAM state
//! `KILLSWITCH_LOCAL_IAM_LAG_SECONDS` old (the env file says how old), as AWS does for a few
//! seconds after a write, while reads see writes at once. `scripts/test.sh` runs this module in a
//! pass of its own with the lag set (the other tests run without it).

mod guard;
mod model;
mod race;

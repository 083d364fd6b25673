//! The core of the Nity session registry, free of any JavaScript.
//!
//! It owns the bookkeeping and every decision: which sessions exist, which
//! client owns each, what the limits admit, what a cleanup or an eviction
//! takes, and which closes are in flight. It never holds session handles:
//! each session gets a [`Slot`], and the embedding layer keeps the handle,
//! and the one index by session id, for that slot.
//!
//! - [`Registry`]: the rules (validation, limits, exactly-once closing).
//! - [`MemoryStore`]: the bookkeeping (slots, clients, orders).
//! - [`HealthReading`]: what a session's health means for stale cleanup.
//! - [`Change`]: the change feed, the one way what is registered leaves the
//!   core (the cluster publishes it to Redis; see the `nity-registry-cluster`
//!   crate for the Redis side).
//!
//! The registry is per process and synchronous: the slots of the handles
//! this process holds, activity order, metrics, closes in flight. None of
//! that means anything to another process; what other processes need (every
//! session's id, client and registration time) leaves through the feed.

pub mod change;
mod close;
mod cursor;
mod error;
mod health;
mod ids;
mod memory_store;
mod metrics;
mod policy;
mod registry;
mod store;

pub use change::{Change, SessionRecord};
pub use close::{CloseOrder, CloseOutcome, CloseReason, CloseReport};
pub use cursor::Cursor;
pub use error::Error;
pub use health::{HealthReading, HealthState};
pub use ids::{Slot, Ticket};
pub use memory_store::MemoryStore;
pub use metrics::Metrics;
pub use policy::{LimitScope, Policy, DEFAULT_MAX_CONCURRENT_CLOSES};
pub use registry::{Registry, SessionInfo, StaleReading};
pub use store::{RemovedSession, SessionView};

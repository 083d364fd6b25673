//! The core of the Nity session registry, free of any JavaScript.
//!
//! It owns the bookkeeping: which sessions exist, which client owns each, and
//! which closes are in flight. It never holds session handles: each session
//! gets a [`Slot`], and the embedding layer keeps the handle for that slot.
//!
//! - [`Registry`]: the rules (validation, exactly-once closing).
//! - [`SessionStore`]: where the bookkeeping lives; [`MemoryStore`] in-process.
//! - [`HealthReading`]: what a session's health means for stale cleanup.

mod close;
mod cursor;
mod error;
mod health;
mod memory_store;
mod metrics;
mod policy;
mod registry;
mod store;

pub use close::{CloseOrder, CloseOutcome, CloseReason, CloseReport, Ticket};
pub use cursor::Cursor;
pub use error::{Error, ErrorKind};
pub use health::{HealthReading, HealthState};
pub use memory_store::MemoryStore;
pub use metrics::Metrics;
pub use policy::{LimitScope, Policy, DEFAULT_MAX_CONCURRENT_CLOSES};
pub use registry::{ClientChange, Registry, SessionInfo, Unregister};
pub use store::{RemovedSession, SessionStore, SessionView};

/// Where the embedding layer keeps a session's handle. A store holds fewer
/// than `u32::MAX` sessions at once; a freed slot is reused.
pub type Slot = u32;

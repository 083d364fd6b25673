//! The core of the Nity session registry, free of any JavaScript.
//!
//! It owns the bookkeeping: which sessions exist, which client owns each, and
//! which closes are in flight. It never holds session handles: each session
//! gets a [`Slot`], and the embedding layer keeps the handle for that slot.
//!
//! - [`Registry`]: the rules (validation, exactly-once closing).
//! - [`SessionStore`]: where the bookkeeping lives; [`MemoryStore`] in-process.
//! - [`HealthReading`]: what a session's health means for stale cleanup.
//! - [`Directory`]: which session belongs to which client, in a form several
//!   processes can share; [`MemoryDirectory`] in-process.
//!
//! # Per process and shared
//!
//! The registry and its store are per process and synchronous: the slots of
//! the handles this process holds, activity order, metrics, closes in flight.
//! None of that means anything to another process. What other processes may
//! need is the directory: every session's id and client (later, also the node
//! that holds it), with each client's sessions in registration order. The
//! [`Directory`] trait takes and returns owned values and returns `Send`
//! futures, so it can be implemented over network I/O.
//!
//! A registry feeds a directory without waiting for it. Once
//! [`Registry::set_directory_changes`] is on, every registration and removal
//! is also recorded as a [`DirectoryChange`]; an embedder takes them with
//! [`Registry::take_directory_changes`] and applies them in the background,
//! in batches, with [`Directory::apply`]. The documented calls stay local and
//! synchronous; the directory trails by one batch. While the feed is off the
//! registry records nothing and pays one branch per registration and removal.
//! Where a rule must hold across processes before a session is admitted (an
//! id unique cluster-wide, a per-client maximum over all nodes), the embedder
//! awaits [`Directory::claim`] first instead: it checks and records in one
//! atomic step.
//!
//! # A Redis-backed directory
//!
//! A later directory keeps the same data in Redis, every key under one
//! namespace hash tag so that one atomic script can reach them all: one hash
//! from session id to record, and one sorted set per client holding its
//! session ids in registration order. Raw ids are only hash fields and set
//! members, never part of a key pattern, so ids with `*`, `:`, `{` or spaces
//! are plain data. A claim is one Lua script or Redis Function that checks the
//! id is free and the client is under its limit and writes, atomically;
//! releases are idempotent; published changes go out pipelined, in bounded
//! batches that are safe to resend. Nodes hold leases rather than sessions
//! holding TTLs, and a fencing epoch per lease keeps a node that comes back
//! from a pause from undoing what others did meanwhile. The [`directory`]
//! module has the details.

mod close;
mod cursor;
pub mod directory;
mod error;
mod health;
mod memory_store;
mod metrics;
mod policy;
mod registry;
mod store;

pub use close::{CloseOrder, CloseOutcome, CloseReason, CloseReport, Ticket};
pub use cursor::Cursor;
pub use directory::{
  ClaimConflict, ClientId, Directory, DirectoryChange, DirectoryStats, MemoryDirectory, SessionId,
  SessionRecord,
};
pub use error::{Error, ErrorKind};
pub use health::{HealthReading, HealthState};
pub use memory_store::MemoryStore;
pub use metrics::Metrics;
pub use policy::{LimitScope, Policy, DEFAULT_MAX_CONCURRENT_CLOSES};
pub use registry::{Registry, SessionInfo, StaleReading, Unregister};
pub use store::{RemovedSession, SessionStore, SessionView};

/// Where the embedding layer keeps a session's handle. A store holds fewer
/// than `u32::MAX` sessions at once; a freed slot is reused.
pub type Slot = u32;

/// A slot no session ever has: in [`Error::AlreadyRegistered`], it says the
/// registration that holds the id is not in this process's store.
pub const NO_SLOT: Slot = Slot::MAX;

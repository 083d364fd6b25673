//! The Redis-backed session directory of the Nity session registry: what a
//! fleet of bridge processes shares so that each knows the sessions of all.
//!
//! Every node keeps its own sessions in its own registry; the directory
//! records, per namespace, which session belongs to which client and which
//! node (see [`node::ClusterNode`]). The design, against what a shared
//! registry usually gets wrong:
//!
//! - **Liveness per node, not per session.** Each node holds one lease
//!   (`leases`, a sorted set scored by its deadline on the Redis server's
//!   clock) and renews it with one script call per heartbeat, whatever
//!   number of sessions it holds. Records carry no TTL.
//! - **Reaping is one script**: every node whose lease lapsed is removed
//!   with all its records in one atomic, idempotent step. A node whose own
//!   lease lapsed (Redis stalled, or the node was paused) reaps nobody, and
//!   a gap in the namespace's own activity longer than a third of a lease
//!   (a stalled Redis) gives every lease that time back first (see
//!   `common.lua`), so a stall declares nobody dead.
//! - **Fencing by epoch.** Each announcement (a start, or a return after
//!   being reaped, or after Redis lost its data) takes a new epoch from a
//!   counter. Records carry the epoch of the node that wrote them; a write
//!   from an epoch that is no longer the node's is refused, and the node
//!   announces again and re-asserts what it really holds.
//! - **No check-then-act from the client.** The strict claim (an id free
//!   fleet-wide, the client under its fleet-wide limit, then the write) is
//!   one script, so racing nodes cannot both pass.
//! - **Raw ids are hash fields and sorted-set members**, never part of a
//!   key or channel name; members are length-prefixed, so no id is the
//!   prefix of another. No SCAN, KEYS or PSUBSCRIBE: a client's or node's
//!   sessions are a lexicographic range of one sorted set.
//! - **One hash tag per namespace** (`nity:{<namespace>}:…`): a namespace is
//!   one slot, ready for Redis Cluster; namespaces never see each other.
//!
//! Keys of a namespace `ns`:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `nity:{ns}:sessions` | hash | session id → `{"c": client, "n": node, "e": epoch, "t": registeredAt}` |
//! | `nity:{ns}:by-client` | sorted set | `<len>:<client><session id>`, score 0 |
//! | `nity:{ns}:by-node` | sorted set | `<len>:<node><session id>`, score 0 |
//! | `nity:{ns}:nodes` | hash | node id → `{"e": epoch, "s": startedAt, "t": lastSeenAt, "dc": records, "dh": their hash}` |
//! | `nity:{ns}:leases` | sorted set | node id, scored by its lease deadline (ms) |
//! | `nity:{ns}:epoch` | string | the epoch counter |
//! | `nity:{ns}:requests` | hash | request id → a remote request, recorded by a live member |
//! | `nity:{ns}:answers` | hash | request id → how many sessions the owner closed |
//! | `nity:{ns}:downs` | hash | `node\nepoch` → records removed, for a minute after a reap or leave |
//! | `nity:{ns}:clock` | hash | `last`: when a script last ran; `third`: the shortest lease announced, divided by 3 |
//!
//! What a node publishes is the core's change feed ([`Change`]): owned
//! records, applied idempotently, in batches. Each node's entry carries the
//! digest of its records ([`digest`]), kept by the scripts in the same step
//! as the records; the heartbeat hands it back, and a node whose digest
//! differs from what it holds resyncs its own records in bounded batches
//! (removing what it does not hold, adding what is missing). That one
//! mechanism repairs records lost (a deleted or evicted key, a replica
//! promoted without the last writes) and records that came back (a
//! publication that timed out on the node but ran in Redis later).

pub mod digest;
pub mod keys;
pub mod member;
pub mod node;
mod scripts;

pub use digest::Digest;
pub use keys::Namespace;
pub use member::{Event, Member};
pub use nity_registry_core::{Change, SessionRecord};
pub use node::{
  Beat, Claim, ClusterNode, ClusterSession, ClusterStats, NodeConfig, NodeInfo, Published,
};

/// What went wrong talking to the directory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
  #[error("namespace '{0}' must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'")]
  InvalidNamespace(String),
  #[error("node id {0:?} must be 1 to 256 bytes of printable text (no control characters)")]
  InvalidNodeId(String),
  /// A live node of the namespace already goes by this id.
  #[error("a live node of the namespace already goes by the node id '{0}'")]
  NodeIdInUse(String),
  /// Redis could not be reached or did not answer in time; the outcome of
  /// a change in flight is unknown.
  #[error("the cluster's Redis is unavailable: {0}")]
  Unavailable(String),
  /// The node `0` did not answer a request in time.
  #[error("node '{0}' did not answer in time")]
  Timeout(String),
  /// Redis answered something the directory did not expect.
  #[error("unexpected reply from the directory's {0} script")]
  Protocol(String),
}

impl ClusterError {
  pub(crate) fn from_redis(error: redis::RedisError) -> ClusterError {
    ClusterError::Unavailable(error.to_string())
  }
}

pub type Result<T> = std::result::Result<T, ClusterError>;

//! What `NativeCluster` hands back and tells: sessions, nodes and counts of
//! the fleet, claims, diagnostics and events, as plain objects.

use napi_derive::napi;

use crate::reports::{named, NamedNumber};

/// What the cluster tells JavaScript: `kind` is `'close'` (close `sessionId`,
/// or `clientId`'s sessions, then answer `requestId`), `'nodeDown'`, or
/// `'resync'` (seed the cluster from the registry: `reseedCluster()`).
#[napi(object)]
pub struct ClusterEvent {
  pub kind: String,
  pub request_id: Option<String>,
  pub session_id: Option<String>,
  pub client_id: Option<String>,
  pub node_id: Option<String>,
  pub sessions: Option<u32>,
  /// `conflict`: the sessions another live node holds.
  pub session_ids: Option<Vec<String>>,
}

#[napi(object)]
pub struct ClusterSessionReport {
  pub session_id: String,
  pub client_id: String,
  pub node_id: String,
  pub registered_at: f64,
}

impl From<nity_registry_cluster::ClusterSession> for ClusterSessionReport {
  fn from(session: nity_registry_cluster::ClusterSession) -> ClusterSessionReport {
    ClusterSessionReport {
      session_id: session.session_id,
      client_id: session.client_id,
      node_id: session.node_id,
      registered_at: session.registered_at,
    }
  }
}

#[napi(object)]
pub struct ClusterStatsReport {
  pub total_sessions: u32,
  pub active_clients: u32,
  pub sessions_by_client: Vec<NamedNumber>,
  pub nodes: u32,
  pub sessions_by_node: Vec<NamedNumber>,
}

fn count(n: usize) -> u32 {
  u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<nity_registry_cluster::ClusterStats> for ClusterStatsReport {
  fn from(stats: nity_registry_cluster::ClusterStats) -> ClusterStatsReport {
    let counts =
      |pairs: Vec<(String, usize)>| named(pairs.into_iter().map(|(name, n)| (name, n as f64)));
    ClusterStatsReport {
      total_sessions: count(stats.total_sessions),
      active_clients: count(stats.active_clients),
      sessions_by_client: counts(stats.sessions_by_client),
      nodes: count(stats.nodes),
      sessions_by_node: counts(stats.sessions_by_node),
    }
  }
}

#[napi(object)]
pub struct ClusterNodeReport {
  pub node_id: String,
  pub sessions: u32,
  pub started_at: f64,
  pub last_seen_at: f64,
}

impl From<nity_registry_cluster::NodeInfo> for ClusterNodeReport {
  fn from(node: nity_registry_cluster::NodeInfo) -> ClusterNodeReport {
    ClusterNodeReport {
      node_id: node.node_id,
      sessions: count(node.sessions),
      started_at: node.started_at,
      last_seen_at: node.last_seen_at,
    }
  }
}

/// The answer to a strict claim: `outcome` is `'claimed'`, `'taken'` (by
/// `nodeId` for `clientId`), `'limit'` (`count` live sessions) or `'fenced'`.
#[napi(object)]
pub struct ClaimReport {
  pub outcome: String,
  pub node_id: Option<String>,
  pub client_id: Option<String>,
  pub count: Option<u32>,
}

impl ClaimReport {
  pub fn outcome(outcome: &str) -> ClaimReport {
    ClaimReport {
      outcome: outcome.to_owned(),
      node_id: None,
      client_id: None,
      count: None,
    }
  }
}

#[napi(object)]
#[derive(Default)]
pub struct ClusterDiagnostics {
  pub malformed_messages: f64,
  pub malformed_records: f64,
  pub reannounced: f64,
  pub pending_changes: f64,
  pub resyncs: f64,
  pub digest_mismatches: f64,
  pub conflicts: f64,
}

impl From<&nity_registry_cluster::Member> for ClusterDiagnostics {
  fn from(member: &nity_registry_cluster::Member) -> ClusterDiagnostics {
    use std::sync::atomic::Ordering::Relaxed;
    let counters = member.diagnostics();
    ClusterDiagnostics {
      malformed_messages: counters.malformed_messages.load(Relaxed) as f64,
      malformed_records: member.node().malformed() as f64,
      reannounced: counters.reannounced.load(Relaxed) as f64,
      pending_changes: counters.pending_changes.load(Relaxed) as f64,
      resyncs: counters.resyncs.load(Relaxed) as f64,
      digest_mismatches: counters.digest_mismatches.load(Relaxed) as f64,
      conflicts: counters.conflicts.load(Relaxed) as f64,
    }
  }
}

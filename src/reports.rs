//! What `NativeRegistry` hands back: plain objects and typed-array columns.
//! The TypeScript surface copies whatever reaches the user into objects of
//! the caller's realm.

use napi::bindgen_prelude::{Float64Array, Uint32Array};
use napi_derive::napi;
use nity_registry_core::{
  CloseOrder, CloseReason, CloseReport, Cursor, HealthReading, HealthState, Metrics, SessionInfo,
};

/// Closes the core ordered, as two columns: close `slots[i]`'s handle and
/// report its end with `tickets[i]`.
#[napi(object)]
pub struct CloseOrders {
  pub tickets: Float64Array,
  pub slots: Uint32Array,
}

impl From<Vec<CloseOrder>> for CloseOrders {
  fn from(orders: Vec<CloseOrder>) -> CloseOrders {
    CloseOrders {
      tickets: Float64Array::new(orders.iter().map(|o| o.ticket as f64).collect()),
      slots: Uint32Array::new(orders.iter().map(|o| o.slot).collect()),
    }
  }
}

/// A registration admitted by closing another: the new session's slot and,
/// if one was closed to make room, its close.
#[napi(object)]
pub struct Admitted {
  pub slot: u32,
  pub evicted_ticket: Option<f64>,
  pub evicted_slot: Option<u32>,
}

/// Registrations as `(slot, seq)` columns, for scans that call user code
/// between steps.
#[napi(object)]
pub struct Registrations {
  pub slots: Uint32Array,
  pub seqs: Float64Array,
}

impl From<Vec<(u32, u64)>> for Registrations {
  fn from(registrations: Vec<(u32, u64)>) -> Registrations {
    Registrations {
      slots: Uint32Array::new(registrations.iter().map(|&(slot, _)| slot).collect()),
      seqs: Float64Array::new(registrations.iter().map(|&(_, seq)| seq as f64).collect()),
    }
  }
}

/// How a finished close went, for the close hooks.
#[napi(object)]
pub struct ClosedReport {
  pub session_id: String,
  pub client_id: String,
  pub reason: String,
  pub duration_ms: f64,
}

impl From<CloseReport> for ClosedReport {
  fn from(report: CloseReport) -> ClosedReport {
    ClosedReport {
      session_id: report.session_id,
      client_id: report.client_id,
      reason: report.reason.as_str().to_owned(),
      duration_ms: report.duration_ms,
    }
  }
}

#[napi(object)]
pub struct NamedNumber {
  pub name: String,
  pub value: f64,
}

fn named(pairs: impl Iterator<Item = (String, f64)>) -> Vec<NamedNumber> {
  pairs
    .map(|(name, value)| NamedNumber { name, value })
    .collect()
}

#[napi(object)]
pub struct SessionInfoReport {
  pub session_id: String,
  pub client_id: String,
  pub registered_at: f64,
  pub last_activity_at: f64,
  pub metrics: Vec<NamedNumber>,
}

impl From<SessionInfo<'_>> for SessionInfoReport {
  fn from(info: SessionInfo<'_>) -> SessionInfoReport {
    SessionInfoReport {
      session_id: info.view.session_id.to_owned(),
      client_id: info.view.client_id.to_owned(),
      registered_at: info.view.registered_at,
      last_activity_at: info.view.last_activity,
      metrics: named(info.metrics.iter().map(|(n, v)| (n.to_string(), *v))),
    }
  }
}

#[napi(object)]
pub struct PageReport {
  pub sessions: Vec<SessionInfoReport>,
  pub next: Option<String>,
}

impl PageReport {
  pub fn new(sessions: Vec<SessionInfoReport>, next: Option<Cursor>) -> PageReport {
    PageReport {
      sessions,
      next: next.map(Cursor::encode),
    }
  }
}

#[napi(object)]
pub struct MetricsReport {
  pub sessions_registered: f64,
  pub sessions_closed: f64,
  /// Every close reason, with 0 for those not seen.
  pub closes_by_reason: Vec<NamedNumber>,
  pub close_failures: f64,
  pub close_timeouts: f64,
  pub average_close_duration_ms: f64,
  pub max_close_duration_ms: f64,
  pub average_session_lifetime_ms: f64,
  pub metric_totals: Vec<NamedNumber>,
}

impl From<Metrics> for MetricsReport {
  fn from(metrics: Metrics) -> MetricsReport {
    let count = |reason: &CloseReason| {
      metrics
        .closes_by_reason
        .iter()
        .find(|(r, _)| r == reason)
        .map_or(0.0, |&(_, n)| n as f64)
    };
    MetricsReport {
      sessions_registered: metrics.sessions_registered as f64,
      sessions_closed: metrics.sessions_closed as f64,
      closes_by_reason: named(
        CloseReason::ALL
          .iter()
          .map(|reason| (reason.as_str().to_owned(), count(reason))),
      ),
      close_failures: metrics.close_failures as f64,
      close_timeouts: metrics.close_timeouts as f64,
      average_close_duration_ms: metrics.average_close_duration_ms,
      max_close_duration_ms: metrics.max_close_duration_ms,
      average_session_lifetime_ms: metrics.average_session_lifetime_ms,
      metric_totals: named(metrics.metric_totals.into_iter()),
    }
  }
}

/// What reading a session's health gave, one byte a session in the columns
/// `judgeHealth` takes.
#[napi]
pub enum HealthCode {
  Idle,
  Active,
  Completed,
  Error,
  /// A `state` outside the documented four.
  Unknown,
  /// `getHealth()` threw or did not return an object.
  Failed,
  /// The session has no `getHealth()`.
  Unavailable,
}

/// Whether an idle-expired session said it is running; one byte a session.
#[napi]
pub enum RunningCode {
  /// Not asked (not past the idle timeout), or it could not say.
  Unknown,
  Running,
  NotRunning,
}

/// The core's reading of a session's health from its code and `isTimedOut`.
pub fn reading(code: u8, timed_out: bool) -> HealthReading {
  let state = match code {
    c if c == HealthCode::Idle as u8 => HealthState::Idle,
    c if c == HealthCode::Active as u8 => HealthState::Active,
    c if c == HealthCode::Completed as u8 => HealthState::Completed,
    c if c == HealthCode::Error as u8 => HealthState::Error,
    c if c == HealthCode::Failed as u8 => return HealthReading::Failed,
    c if c == HealthCode::Unavailable as u8 => return HealthReading::Unavailable,
    _ => HealthState::Unknown,
  };
  HealthReading::Reported { state, timed_out }
}

/// The core's view of a running answer.
pub fn running(code: u8) -> Option<bool> {
  match code {
    c if c == RunningCode::Running as u8 => Some(true),
    c if c == RunningCode::NotRunning as u8 => Some(false),
    _ => None,
  }
}

/// What the cluster tells JavaScript: `kind` is `'close'` (close `sessionId`,
/// or `clientId`'s sessions, then answer `requestId`) or `'nodeDown'`.
#[napi(object)]
pub struct ClusterEvent {
  pub kind: String,
  pub request_id: Option<String>,
  pub session_id: Option<String>,
  pub client_id: Option<String>,
  pub node_id: Option<String>,
  pub sessions: Option<u32>,
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
    }
  }
}

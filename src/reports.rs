//! What `NativeRegistry` hands back: plain objects and typed-array columns.
//! The TypeScript surface copies whatever reaches the user into objects of
//! the caller's realm.

use napi::bindgen_prelude::{Float64Array, Uint32Array};
use napi_derive::napi;
use nity_registry_core::{
  CloseOrder, CloseReason, CloseReport, Cursor, Metrics, SessionInfo, Slot,
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
      tickets: Float64Array::new(orders.iter().map(|o| o.ticket.0 as f64).collect()),
      slots: Uint32Array::new(orders.iter().map(|o| o.slot.0).collect()),
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

impl From<Vec<(Slot, u64)>> for Registrations {
  fn from(registrations: Vec<(Slot, u64)>) -> Registrations {
    Registrations {
      slots: Uint32Array::new(registrations.iter().map(|&(slot, _)| slot.0).collect()),
      seqs: Float64Array::new(registrations.iter().map(|&(_, seq)| seq as f64).collect()),
    }
  }
}

/// How a finished close went, for the close hooks (the surface knows which
/// session it was).
#[napi(object)]
pub struct ClosedReport {
  pub reason: String,
  pub duration_ms: f64,
}

impl From<CloseReport> for ClosedReport {
  fn from(report: CloseReport) -> ClosedReport {
    ClosedReport {
      reason: report.reason.as_str().to_owned(),
      duration_ms: report.duration_ms,
    }
  }
}

/// A number with a name: a metric, a client's or a node's session count.
#[napi(object)]
pub struct NamedNumber {
  pub name: String,
  pub value: f64,
}

pub fn named(pairs: impl Iterator<Item = (String, f64)>) -> Vec<NamedNumber> {
  pairs
    .map(|(name, value)| NamedNumber { name, value })
    .collect()
}

/// What the core knows of a session, by slot: the surface adds its ids.
#[napi(object)]
pub struct SessionInfoReport {
  pub slot: u32,
  pub registered_at: f64,
  pub last_activity_at: f64,
  pub metrics: Vec<NamedNumber>,
}

impl From<SessionInfo<'_>> for SessionInfoReport {
  fn from(info: SessionInfo<'_>) -> SessionInfoReport {
    SessionInfoReport {
      slot: info.view.slot.0,
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

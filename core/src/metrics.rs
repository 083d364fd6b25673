//! Aggregate metrics, kept up to date as sessions come and go, never by
//! scanning.

use hashbrown::HashMap;

use crate::close::{CloseOutcome, CloseReason};

/// Everything `getMetrics()` reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
  pub sessions_registered: u64,
  /// Sessions removed for closing (whatever their close then did).
  pub sessions_closed: u64,
  pub closes_by_reason: Vec<(CloseReason, u64)>,
  /// Closes that threw or rejected.
  pub close_failures: u64,
  /// Closes given up on at the close deadline.
  pub close_timeouts: u64,
  /// Over closes that ended (settled, failed or timed out).
  pub average_close_duration_ms: f64,
  pub max_close_duration_ms: f64,
  /// Registration to removal, over sessions removed for closing.
  pub average_session_lifetime_ms: f64,
  /// Per metric name, the sum over all sessions ever registered of their
  /// latest value.
  pub metric_totals: Vec<(String, f64)>,
}

#[derive(Default)]
pub(crate) struct MetricsRecorder {
  registered: u64,
  closed: u64,
  by_reason: HashMap<CloseReason, u64>,
  failures: u64,
  timeouts: u64,
  closes_ended: u64,
  close_duration_total: f64,
  close_duration_max: f64,
  lifetime_total: f64,
  /// Totals in the order names first appeared.
  totals: Vec<(String, f64)>,
  total_index: HashMap<String, usize>,
}

impl MetricsRecorder {
  pub(crate) fn registered(&mut self) {
    self.registered += 1;
  }

  pub(crate) fn removed(&mut self, reason: CloseReason, lifetime_ms: f64) {
    self.closed += 1;
    *self.by_reason.entry(reason).or_default() += 1;
    self.lifetime_total += lifetime_ms.max(0.0);
  }

  pub(crate) fn close_ended(&mut self, outcome: CloseOutcome, duration_ms: f64) {
    self.closes_ended += 1;
    self.close_duration_total += duration_ms;
    self.close_duration_max = self.close_duration_max.max(duration_ms);
    match outcome {
      CloseOutcome::Closed => {}
      CloseOutcome::Failed => self.failures += 1,
      CloseOutcome::TimedOut => self.timeouts += 1,
    }
  }

  /// A session metric moved from `old` (if it had one) to `new`.
  pub(crate) fn metric_changed(&mut self, name: &str, old: Option<f64>, new: f64) {
    let delta = new - old.unwrap_or(0.0);
    match self.total_index.get(name) {
      Some(&i) => self.totals[i].1 += delta,
      None => {
        self.total_index.insert(name.to_owned(), self.totals.len());
        self.totals.push((name.to_owned(), delta));
      }
    }
  }

  pub(crate) fn snapshot(&self) -> Metrics {
    let average = |total: f64, count: u64| {
      if count == 0 {
        0.0
      } else {
        total / count as f64
      }
    };
    let mut closes_by_reason: Vec<(CloseReason, u64)> = self
      .by_reason
      .iter()
      .map(|(&reason, &count)| (reason, count))
      .collect();
    closes_by_reason.sort_by_key(|(reason, _)| reason.as_str());
    Metrics {
      sessions_registered: self.registered,
      sessions_closed: self.closed,
      closes_by_reason,
      close_failures: self.failures,
      close_timeouts: self.timeouts,
      average_close_duration_ms: average(self.close_duration_total, self.closes_ended),
      max_close_duration_ms: self.close_duration_max,
      average_session_lifetime_ms: average(self.lifetime_total, self.closed),
      metric_totals: self.totals.clone(),
    }
  }
}

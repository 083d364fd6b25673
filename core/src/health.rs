//! What a session's health report means for cleanup.

use crate::CloseReason;

/// The `state` a session reports in its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
  Idle,
  Active,
  Completed,
  Error,
  /// Any state outside the documented four.
  Unknown,
}

/// The answer to "how is this session?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthReading {
  /// The session reported its health.
  Reported { state: HealthState, timed_out: bool },
  /// Asking failed: the health call threw or returned something that is not
  /// a health report. Counts as an error state.
  Failed,
  /// The session has no way to report health; it is left alone.
  Unavailable,
}

impl HealthReading {
  /// Why stale cleanup closes the session, if it does: its health says
  /// stale; or it is past the idle timeout and `running`, asked only of such
  /// sessions, says it is not running.
  pub fn close_reason(self, running: Option<bool>) -> Option<CloseReason> {
    if self.is_stale() {
      return Some(CloseReason::CleanupStale);
    }
    match running {
      Some(false) => Some(CloseReason::Idle),
      _ => None,
    }
  }

  /// Whether stale cleanup removes the session: timed out, in the error
  /// state, or unable to say.
  pub fn is_stale(self) -> bool {
    match self {
      HealthReading::Reported { state, timed_out } => timed_out || state == HealthState::Error,
      HealthReading::Failed => true,
      HealthReading::Unavailable => false,
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn stale_means_timed_out_error_or_unreadable() {
    let reported = |state, timed_out| HealthReading::Reported { state, timed_out };
    assert!(reported(HealthState::Error, false).is_stale());
    assert!(reported(HealthState::Idle, true).is_stale());
    assert!(reported(HealthState::Active, true).is_stale());
    assert!(!reported(HealthState::Active, false).is_stale());
    assert!(!reported(HealthState::Completed, false).is_stale());
    assert!(!reported(HealthState::Unknown, false).is_stale());
    assert!(HealthReading::Failed.is_stale());
    assert!(!HealthReading::Unavailable.is_stale());
  }

  #[test]
  fn stale_health_wins_over_idleness() {
    let error = HealthReading::Reported {
      state: HealthState::Error,
      timed_out: false,
    };
    let idle = HealthReading::Reported {
      state: HealthState::Idle,
      timed_out: false,
    };
    assert_eq!(
      error.close_reason(Some(false)),
      Some(CloseReason::CleanupStale)
    );
    assert_eq!(idle.close_reason(Some(false)), Some(CloseReason::Idle));
    assert_eq!(idle.close_reason(Some(true)), None);
    assert_eq!(idle.close_reason(None), None);
  }
}

//! The codes a stale scan hands in, one byte a session: what `getHealth()`
//! gave and whether an idle session said it is running, read into the
//! core's [`HealthReading`] and running answer.

use napi_derive::napi;
use nity_registry_core::{HealthReading, HealthState};

/// What reading a session's health gave, one byte a session in the columns
/// `closeStale` takes.
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

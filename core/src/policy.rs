//! The registry's lifecycle policy: limits on how many sessions it admits,
//! what to do when full, when a session counts as idle, and how many closes
//! may run at once. All optional; the default policy is the documented API's
//! behaviour (no limits, no idle timeout).

/// Which limit a registration ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
  /// `max_sessions`, across all clients.
  Registry,
  /// `max_sessions_per_client`, for the registering client.
  Client,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
  /// Most sessions the registry holds; `None`: unlimited.
  pub max_sessions: Option<usize>,
  /// Most sessions one client holds; `None`: unlimited.
  pub max_sessions_per_client: Option<usize>,
  /// When full, close the least recently active idle session to make room
  /// instead of refusing.
  pub evict_idle: bool,
  /// Sessions inactive for longer than this (ms), and not running, are
  /// closed by stale cleanup.
  pub idle_timeout_ms: Option<f64>,
  /// Most closes a bulk cleanup runs at once.
  pub max_concurrent_closes: usize,
}

/// The default bound on closes running at once.
pub const DEFAULT_MAX_CONCURRENT_CLOSES: usize = 64;

impl Default for Policy {
  fn default() -> Self {
    Policy {
      max_sessions: None,
      max_sessions_per_client: None,
      evict_idle: false,
      idle_timeout_ms: None,
      max_concurrent_closes: DEFAULT_MAX_CONCURRENT_CLOSES,
    }
  }
}

impl Policy {
  /// The limit a new session of a client that owns `client_len` sessions
  /// would break, in a registry of `total`; the client's own limit first.
  pub fn full(&self, total: usize, client_len: usize) -> Option<LimitScope> {
    if self
      .max_sessions_per_client
      .is_some_and(|max| client_len >= max)
    {
      return Some(LimitScope::Client);
    }
    if self.max_sessions.is_some_and(|max| total >= max) {
      return Some(LimitScope::Registry);
    }
    None
  }

  /// Whether a session last active at `last_activity` is past the idle timeout.
  pub fn idle_expired(&self, last_activity: f64, now: f64) -> bool {
    self
      .idle_timeout_ms
      .is_some_and(|timeout| now - last_activity > timeout)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_client_limit_is_checked_first() {
    let policy = Policy {
      max_sessions: Some(2),
      max_sessions_per_client: Some(1),
      ..Policy::default()
    };
    assert_eq!(policy.full(0, 0), None);
    assert_eq!(policy.full(1, 1), Some(LimitScope::Client));
    assert_eq!(policy.full(2, 0), Some(LimitScope::Registry));
    assert_eq!(Policy::default().full(usize::MAX - 1, usize::MAX - 1), None);
  }

  #[test]
  fn idle_means_strictly_longer_than_the_timeout() {
    let policy = Policy {
      idle_timeout_ms: Some(100.0),
      ..Policy::default()
    };
    assert!(!policy.idle_expired(0.0, 100.0));
    assert!(policy.idle_expired(0.0, 100.5));
    assert!(!Policy::default().idle_expired(0.0, f64::MAX));
  }
}

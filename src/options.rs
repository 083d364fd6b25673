//! The lifecycle policy a `NativeRegistry` is created with. The TypeScript
//! surface has checked every value; absent fields keep the core's defaults.

use napi_derive::napi;
use nity_registry_core::Policy;

#[napi(object)]
pub struct PolicyOptions {
  pub max_sessions: Option<u32>,
  pub max_sessions_per_client: Option<u32>,
  pub evict_idle: Option<bool>,
  pub idle_timeout_ms: Option<f64>,
  pub max_concurrent_closes: Option<u32>,
}

impl From<PolicyOptions> for Policy {
  fn from(options: PolicyOptions) -> Policy {
    let defaults = Policy::default();
    Policy {
      max_sessions: options.max_sessions.map(|n| n as usize),
      max_sessions_per_client: options.max_sessions_per_client.map(|n| n as usize),
      evict_idle: options.evict_idle.unwrap_or(defaults.evict_idle),
      idle_timeout_ms: options.idle_timeout_ms,
      max_concurrent_closes: options
        .max_concurrent_closes
        .map_or(defaults.max_concurrent_closes, |n| n as usize),
    }
  }
}

//! Reading `new NitySessionRegistry(options)`. Every option is optional; a
//! wrong one is a `TypeError` with code `ERR_INVALID_OPTIONS` that names it,
//! and no registry is made.

use std::ffi::CStr;

use napi::{Env, Result};

use crate::js::{self, Type, Value};
use nity_registry_core::Policy;

/// The default close deadline.
pub const DEFAULT_CLOSE_TIMEOUT_MS: f64 = 10_000.0;

pub struct Options {
  pub listener: Option<Value>,
  pub policy: Policy,
  pub cleanup_interval_ms: Option<f64>,
  pub close_timeout_ms: f64,
  pub clock: Option<Value>,
}

impl Options {
  pub fn read(env: &Env, options: Option<Value>) -> Result<Options> {
    let mut read = Options {
      listener: None,
      policy: Policy::default(),
      cleanup_interval_ms: None,
      close_timeout_ms: DEFAULT_CLOSE_TIMEOUT_MS,
      clock: None,
    };
    let Some(options) = options else {
      return Ok(read);
    };
    match js::type_of(env, options)? {
      Type::Undefined | Type::Null => return Ok(read),
      Type::Object => {}
      other => {
        return Err(invalid(
          env,
          &format!("options must be an object, got {}", other.describe()),
        ))
      }
    }
    let listener = js::get(env, options, c"onSessionClosed")?;
    if js::type_of(env, listener)? != Type::Undefined {
      read.listener = Some(listener);
    }
    read.cleanup_interval_ms = duration(env, options, c"cleanupIntervalMs")?;
    read.policy.idle_timeout_ms = duration(env, options, c"idleTimeoutMs")?;
    if let Some(timeout) = duration(env, options, c"closeTimeoutMs")? {
      read.close_timeout_ms = timeout;
    }
    if let Some(max) = count(env, options, c"maxConcurrentCloses")? {
      read.policy.max_concurrent_closes = max;
    }
    read.policy.max_sessions = count(env, options, c"maxSessions")?;
    read.policy.max_sessions_per_client = count(env, options, c"maxSessionsPerClient")?;
    let evict = js::get(env, options, c"evictIdle")?;
    match js::type_of(env, evict)? {
      Type::Undefined => {}
      Type::Boolean => read.policy.evict_idle = js::to_bool(env, evict)?,
      other => {
        return Err(invalid(
          env,
          &format!(
            "options.evictIdle must be a boolean, got {}",
            other.describe()
          ),
        ))
      }
    }
    let clock = js::get(env, options, c"clock")?;
    if js::type_of(env, clock)? != Type::Undefined {
      for name in [c"now", c"setTimeout", c"clearTimeout"] {
        let is_function = js::type_of(env, clock)? == Type::Object
          && js::type_of(env, js::get(env, clock, name)?)? == Type::Function;
        if !is_function {
          return Err(invalid(
            env,
            "options.clock must be an object with now(), setTimeout() and clearTimeout() methods",
          ));
        }
      }
      read.clock = Some(clock);
    }
    Ok(read)
  }
}

fn invalid(env: &Env, message: &str) -> napi::Error {
  js::throw(env, true, "ERR_INVALID_OPTIONS", message)
}

fn name_of(name: &CStr) -> &str {
  name.to_str().unwrap_or("option")
}

/// A positive, finite number of milliseconds, or `None` when absent.
fn duration(env: &Env, options: Value, name: &CStr) -> Result<Option<f64>> {
  let value = js::get(env, options, name)?;
  match js::type_of(env, value)? {
    Type::Undefined => Ok(None),
    Type::Number => {
      let ms = js::to_f64(env, value)?;
      if ms.is_finite() && ms > 0.0 {
        Ok(Some(ms))
      } else {
        Err(invalid(
          env,
          &format!(
            "options.{} must be a positive number of milliseconds, got {ms}",
            name_of(name)
          ),
        ))
      }
    }
    other => Err(invalid(
      env,
      &format!(
        "options.{} must be a positive number of milliseconds, got {}",
        name_of(name),
        other.describe()
      ),
    )),
  }
}

/// A positive integer, or `None` when absent.
fn count(env: &Env, options: Value, name: &CStr) -> Result<Option<usize>> {
  let value = js::get(env, options, name)?;
  match js::type_of(env, value)? {
    Type::Undefined => Ok(None),
    Type::Number => {
      let n = js::to_f64(env, value)?;
      if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 {
        Ok(Some(n as usize))
      } else {
        Err(invalid(
          env,
          &format!(
            "options.{} must be a positive integer, got {n}",
            name_of(name)
          ),
        ))
      }
    }
    other => Err(invalid(
      env,
      &format!(
        "options.{} must be a positive integer, got {}",
        name_of(name),
        other.describe()
      ),
    )),
  }
}

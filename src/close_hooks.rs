//! Close hooks: JavaScript listeners told about every finished close.
//!
//! A listener runs after the handle's `close()` has settled and before the
//! promise of the call that closed it resolves. A listener that throws is
//! reported as a process warning and never disturbs the registry or the
//! other listeners.

use napi::{Env, Result};

use crate::js::{self, Value};
use crate::js_state::JsState;
use nity_registry_core::{CloseOutcome, CloseReport};

/// Which listener sits at which index of the JavaScript listener array.
#[derive(Default)]
pub struct CloseHooks {
  ids: Vec<Option<u64>>,
  next_id: u64,
}

impl CloseHooks {
  pub fn is_empty(&self) -> bool {
    self.ids.iter().all(Option::is_none)
  }

  /// Adds a listener and returns the id that removes it.
  pub fn add(&mut self, env: &Env, state: &JsState, listener: Value) -> Result<u64> {
    self.next_id += 1;
    let id = self.next_id;
    let index = match self.ids.iter().position(Option::is_none) {
      Some(free) => {
        self.ids[free] = Some(id);
        free
      }
      None => {
        self.ids.push(Some(id));
        self.ids.len() - 1
      }
    };
    js::set_element(env, state.listeners(env)?, index as u32, listener)?;
    Ok(id)
  }

  /// Removes a listener; removing one twice does nothing.
  pub fn remove(&mut self, env: &Env, state: &JsState, id: u64) -> Result<()> {
    if let Some(index) = self.ids.iter().position(|&entry| entry == Some(id)) {
      self.ids[index] = None;
      js::set_element(
        env,
        state.listeners(env)?,
        index as u32,
        js::undefined(env)?,
      )?;
    }
    Ok(())
  }

  /// The listeners subscribed right now, so that listeners added or removed
  /// while an event is delivered take effect from the next event on.
  pub fn snapshot(&self, env: &Env, state: &JsState) -> Result<Vec<Value>> {
    let listeners = state.listeners(env)?;
    self
      .ids
      .iter()
      .enumerate()
      .filter(|(_, id)| id.is_some())
      .map(|(index, _)| js::get_element(env, listeners, index as u32))
      .collect()
  }
}

/// Builds `{ sessionId, clientId, reason, durationMs, error?, timedOut? }`.
pub fn event(env: &Env, report: &CloseReport, error: Option<Value>) -> Result<Value> {
  let event = js::object(env)?;
  let mut fields = vec![
    (
      js::string(env, "sessionId")?,
      js::string(env, &report.session_id)?,
    ),
    (
      js::string(env, "clientId")?,
      js::string(env, &report.client_id)?,
    ),
    (
      js::string(env, "reason")?,
      js::string(env, report.reason.as_str())?,
    ),
    (
      js::string(env, "durationMs")?,
      js::number(env, report.duration_ms)?,
    ),
  ];
  if report.outcome != CloseOutcome::Closed {
    let error = match error {
      Some(error) => error,
      None => js::undefined(env)?,
    };
    fields.push((js::string(env, "error")?, error));
  }
  if report.outcome == CloseOutcome::TimedOut {
    fields.push((js::string(env, "timedOut")?, js::boolean(env, true)?));
  }
  js::define_data(env, event, &fields)?;
  Ok(event)
}

/// Calls every listener with the event. Never throws.
pub fn deliver(env: &Env, listeners: &[Value], event: Value) {
  let Ok(undefined) = js::undefined(env) else {
    return;
  };
  for &listener in listeners {
    if let Ok(Err(thrown)) = js::call(env, undefined, listener, &[event]) {
      warn_listener_failed(env, thrown);
    }
  }
}

/// `process.emitWarning(warning)` with the thrown value as its `cause`, when
/// `process` exists. A warning that cannot be raised is dropped.
fn warn_listener_failed(env: &Env, thrown: Value) {
  let _ = (|| -> Result<()> {
    let global = js::global(env)?;
    let process = js::get(env, global, c"process")?;
    if js::type_of(env, process)? != js::Type::Object {
      return Ok(());
    }
    let emit = js::get(env, process, c"emitWarning")?;
    if js::type_of(env, emit)? != js::Type::Function {
      return Ok(());
    }
    let warning = js::error(
      env,
      false,
      "ERR_CLOSE_LISTENER_FAILED",
      "a session close listener threw; the registry carried on",
    )?;
    js::define_data(
      env,
      warning,
      &[
        (
          js::string(env, "name")?,
          js::string(env, "NitySessionRegistryWarning")?,
        ),
        (js::string(env, "cause")?, thrown),
      ],
    )?;
    let _ = js::call(env, process, emit, &[warning])?;
    Ok(())
  })();
  js::clear_pending(env);
}

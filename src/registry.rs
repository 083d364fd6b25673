//! `NitySessionRegistry`, the class JavaScript sees. It converts arguments,
//! keeps handles in the JavaScript state, and leaves every decision to the
//! core registry.

use std::cell::RefCell;
use std::time::Instant;

use napi::bindgen_prelude::{ClassInstance, FromNapiValue, ObjectFinalize, This, Unknown};
use napi::{Env, JsValue, Result};
use napi_derive::napi;

use crate::close_hooks::CloseHooks;
use crate::closing::{Closing, Waiter};
use crate::errors;
use crate::js::{self, Type, Value};
use crate::js_state::JsState;
use nity_registry_core::{
  CloseReason, Error as CoreError, HealthReading, HealthState, Registry, SessionStore, Unregister,
};

/// Tracks the sessions of every connected client, finds them again, and
/// closes them when their client leaves or they go stale.
///
/// Handles are kept as given: lookups return the very objects that were
/// registered. A session is removed from the registry before its `close()`
/// runs, so racing calls close it exactly once and a `close()` that throws,
/// rejects or calls back into the registry never leaves it behind.
#[napi(custom_finalize)]
pub struct NitySessionRegistry {
  pub(crate) core: RefCell<Registry>,
  pub(crate) js: JsState,
  pub(crate) hooks: RefCell<CloseHooks>,
  pub(crate) closing: RefCell<Closing>,
  epoch: Instant,
}

impl ObjectFinalize for NitySessionRegistry {
  fn finalize(self, env: Env) -> Result<()> {
    self.js.release(&env);
    Ok(())
  }
}

#[napi]
impl NitySessionRegistry {
  /// Creates an empty registry. `options` is optional; see
  /// `NitySessionRegistryOptions`.
  #[napi(constructor, ts_args_type = "options?: NitySessionRegistryOptions")]
  pub fn new(env: &Env, this: This, options: Option<Unknown>) -> Result<Self> {
    let this = this.object.raw();
    let registry = NitySessionRegistry {
      core: RefCell::new(Registry::new()),
      js: JsState::attach(env, this)?,
      hooks: RefCell::new(CloseHooks::default()),
      closing: RefCell::new(Closing::default()),
      epoch: Instant::now(),
    };
    if let Some(options) = options {
      registry.apply_options(env, options.raw())?;
    }
    Ok(registry)
  }

  /// Registers a session under a client. A client may own many sessions.
  ///
  /// Registering the same handle again under the same client does nothing;
  /// any other reuse of a registered id throws `ERR_SESSION_ALREADY_REGISTERED`
  /// and keeps the first registration. Invalid arguments throw a `TypeError`.
  /// A call that throws changes nothing.
  #[napi(ts_args_type = "clientId: string, session: H")]
  pub fn register(&self, env: &Env, client_id: Unknown, session: Unknown) -> Result<()> {
    let (client_id, session) = (client_id.raw(), session.raw());
    expect_string(env, client_id, "clientId", "ERR_INVALID_CLIENT_ID")?;
    let session_type = js::type_of(env, session)?;
    if session_type != Type::Object {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_SESSION",
        &format!(
          "session must be an object with an id and a close() method, got {}",
          session_type.describe()
        ),
      ));
    }
    let id = js::get(env, session, c"id")?;
    expect_string(env, id, "session.id", "ERR_INVALID_SESSION")?;
    let close = js::get(env, session, c"close")?;
    let close_type = js::type_of(env, close)?;
    if close_type != Type::Function {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_SESSION",
        &format!(
          "session.close must be a function, got {}",
          close_type.describe()
        ),
      ));
    }
    let now = self.now();
    let result = js::with_str(env, client_id, |client_id| {
      js::with_str(env, id, |session_id| {
        self
          .core
          .borrow_mut()
          .register(client_id, session_id, now)
          .map_err(|error| {
            let same_client = matches!(&error, CoreError::AlreadyRegistered { client_id: owner, .. } if owner == client_id);
            (error, same_client)
          })
      })
    })??;
    match result {
      Ok(slot) => self.js.put_handle(env, slot, session),
      // Registering the very same handle under the same client again is a no-op.
      Err((CoreError::AlreadyRegistered { slot, .. }, true))
        if js::strict_equals(env, self.js.handle(env, slot)?, session)? =>
      {
        Ok(())
      }
      Err((error, _)) => Err(errors::throw(env, &error)),
    }
  }

  /// Removes a session and closes it. Resolves once its `close()` has
  /// settled and rejects with the handle's error if `close()` fails (the
  /// session is removed either way). An unknown id resolves at once; the id
  /// of a session still closing resolves when that close ends.
  #[napi(ts_args_type = "sessionId: string", ts_return_type = "Promise<void>")]
  pub fn unregister<'env>(
    &self,
    env: &'env Env,
    this: This,
    session_id: Unknown,
  ) -> Result<Unknown<'env>> {
    let session_id = session_id.raw();
    if let Some(error) = string_error(env, session_id, "sessionId", "ERR_INVALID_SESSION_ID")? {
      return unknown(env, js::rejected(env, error)?);
    }
    let now = self.now();
    let outcome = js::with_str(env, session_id, |id| {
      self.core.borrow_mut().unregister(id, now)
    })?;
    let promise = match outcome {
      Unregister::NotRegistered => js::resolved(env, js::undefined(env)?)?,
      Unregister::AlreadyClosing(ticket) => {
        let (waiter, promise) = self.new_promise(env)?;
        self
          .closing
          .borrow_mut()
          .wait(ticket, Waiter::Bystander(waiter));
        promise
      }
      Unregister::Close(order) => {
        let (waiter, promise) = self.new_promise(env)?;
        self.close_orders(env, this.object.raw(), vec![order], |_| {
          Waiter::Caller(waiter)
        });
        promise
      }
    };
    unknown(env, promise)
  }

  /// Closes every session of a client, all at once, and resolves with how
  /// many were removed (0 for an unknown client). Failed closes do not
  /// reject: they are reported to the close hooks.
  #[napi(ts_args_type = "clientId: string", ts_return_type = "Promise<number>")]
  pub fn cleanup_client<'env>(
    &self,
    env: &'env Env,
    this: This,
    client_id: Unknown,
  ) -> Result<Unknown<'env>> {
    let client_id = client_id.raw();
    if let Some(error) = string_error(env, client_id, "clientId", "ERR_INVALID_CLIENT_ID")? {
      return unknown(env, js::rejected(env, error)?);
    }
    let now = self.now();
    let orders = js::with_str(env, client_id, |id| {
      self.core.borrow_mut().cleanup_client(id, now)
    })?;
    self.close_batch(env, this.object.raw(), orders)
  }

  /// The client's sessions in registration order, as a new array (empty
  /// when the client has none).
  #[napi(ts_args_type = "clientId: string", ts_return_type = "H[]")]
  pub fn get_client_sessions<'env>(
    &self,
    env: &'env Env,
    client_id: Unknown,
  ) -> Result<Unknown<'env>> {
    let client_id = client_id.raw();
    expect_string(env, client_id, "clientId", "ERR_INVALID_CLIENT_ID")?;
    let slots: Vec<u32> = js::with_str(env, client_id, |id| {
      self.core.borrow().store().client_slots(id).collect()
    })?;
    let handles = self.js.handles(env)?;
    let array = js::array(env, slots.len())?;
    for (index, slot) in slots.into_iter().enumerate() {
      js::set_element(
        env,
        array,
        index as u32,
        js::get_element(env, handles, slot)?,
      )?;
    }
    unknown(env, array)
  }

  /// The session registered under this id, or `undefined`.
  #[napi(ts_args_type = "sessionId: string", ts_return_type = "H | undefined")]
  pub fn get_session<'env>(&self, env: &'env Env, session_id: Unknown) -> Result<Unknown<'env>> {
    let session_id = session_id.raw();
    expect_string(env, session_id, "sessionId", "ERR_INVALID_SESSION_ID")?;
    let slot = js::with_str(env, session_id, |id| self.core.borrow().session(id))?;
    match slot {
      Some(slot) => unknown(env, self.js.handle(env, slot)?),
      None => unknown(env, js::undefined(env)?),
    }
  }

  /// `{ totalSessions, activeClients, sessionsByClient }`, counted now.
  #[napi(ts_return_type = "NitySessionRegistryStats")]
  pub fn get_stats<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    let by_client = js::object(env)?;
    let (total, clients) = {
      let core = self.core.borrow();
      let store = core.store();
      let mut entries = Vec::with_capacity(store.client_count());
      for (client, count) in store.clients() {
        entries.push((js::string(env, client)?, js::number(env, count as f64)?));
      }
      js::define_data(env, by_client, &entries)?;
      (store.session_count(), store.client_count())
    };
    let stats = js::object(env)?;
    js::define_data(
      env,
      stats,
      &[
        (
          js::string(env, "totalSessions")?,
          js::number(env, total as f64)?,
        ),
        (
          js::string(env, "activeClients")?,
          js::number(env, clients as f64)?,
        ),
        (js::string(env, "sessionsByClient")?, by_client),
      ],
    )?;
    unknown(env, stats)
  }

  /// Asks every session for its health and closes those that are timed out
  /// or in the error state (a `getHealth()` that throws counts as error; a
  /// session without `getHealth` is left alone). Resolves with the number
  /// removed; failed closes are reported to the close hooks.
  #[napi(ts_args_type = "", ts_return_type = "Promise<number>")]
  pub fn cleanup_stale<'env>(&self, env: &'env Env, this: This) -> Result<Unknown<'env>> {
    let registrations = self.core.borrow().registrations();
    let mut stale = Vec::new();
    for (slot, seq) in registrations {
      // A getHealth() may have unregistered or replaced later sessions.
      if !self.core.borrow().is_registered(slot, seq) {
        continue;
      }
      let handle = self.js.handle(env, slot)?;
      if read_health(env, handle)?.is_stale() {
        stale.push((slot, seq));
      }
    }
    let now = self.now();
    let orders: Vec<_> = {
      let mut core = self.core.borrow_mut();
      stale
        .into_iter()
        .filter_map(|(slot, seq)| {
          core.close_registration(slot, seq, CloseReason::CleanupStale, now)
        })
        .collect()
    };
    self.close_batch(env, this.object.raw(), orders)
  }

  /// Subscribes to close events; returns the function that unsubscribes.
  #[napi(
    ts_args_type = "listener: (event: NitySessionClosedEvent) => void",
    ts_return_type = "() => void"
  )]
  pub fn on_session_closed<'env>(
    &self,
    env: &'env Env,
    this: This,
    listener: Unknown,
  ) -> Result<Unknown<'env>> {
    let id = self.subscribe(env, listener.raw())?;
    let unsubscribe = js::function_with_tag(env, "unsubscribe", on_unsubscribe, id as usize)?;
    unknown(env, js::bind(env, unsubscribe, this.object.raw())?)
  }
}

impl NitySessionRegistry {
  /// Milliseconds since the registry was created, for close durations.
  pub(crate) fn now(&self) -> f64 {
    self.epoch.elapsed().as_secs_f64() * 1000.0
  }

  pub(crate) fn subscribe(&self, env: &Env, listener: Value) -> Result<u64> {
    let kind = js::type_of(env, listener)?;
    if kind != Type::Function {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_LISTENER",
        &format!(
          "a close listener must be a function, got {}",
          kind.describe()
        ),
      ));
    }
    self.hooks.borrow_mut().add(env, &self.js, listener)
  }

  fn apply_options(&self, env: &Env, options: Value) -> Result<()> {
    match js::type_of(env, options)? {
      Type::Undefined | Type::Null => return Ok(()),
      Type::Object => {}
      other => {
        return Err(js::throw(
          env,
          true,
          "ERR_INVALID_OPTIONS",
          &format!("options must be an object, got {}", other.describe()),
        ))
      }
    }
    let listener = js::get(env, options, c"onSessionClosed")?;
    if js::type_of(env, listener)? != Type::Undefined {
      self.subscribe(env, listener)?;
    }
    Ok(())
  }

  /// Closes what a bulk cleanup removed and returns a promise for the count.
  fn close_batch<'env>(
    &self,
    env: &'env Env,
    this: Value,
    orders: Vec<nity_registry_core::CloseOrder>,
  ) -> Result<Unknown<'env>> {
    if orders.is_empty() {
      return unknown(env, js::resolved(env, js::number(env, 0.0)?)?);
    }
    let (waiter, promise) = self.new_promise(env)?;
    let batch = self.closing.borrow_mut().batch(waiter, orders.len());
    self.close_orders(env, this, orders, |_| Waiter::Batch(batch));
    unknown(env, promise)
  }
}

fn unknown<'env>(env: &'env Env, value: Value) -> Result<Unknown<'env>> {
  unsafe { Unknown::from_napi_value(env.raw(), value) }
}

/// A `TypeError` for anything but a string.
fn string_error(env: &Env, value: Value, name: &str, code: &str) -> Result<Option<Value>> {
  let kind = js::type_of(env, value)?;
  if kind == Type::String {
    return Ok(None);
  }
  let message = format!("{name} must be a non-empty string, got {}", kind.describe());
  js::error(env, true, code, &message).map(Some)
}

fn expect_string(env: &Env, value: Value, name: &str, code: &str) -> Result<()> {
  let kind = js::type_of(env, value)?;
  if kind == Type::String {
    return Ok(());
  }
  let message = format!("{name} must be a non-empty string, got {}", kind.describe());
  Err(js::throw(env, true, code, &message))
}

/// What a handle's `getHealth()` says, read defensively: a getter or call
/// that throws, or an answer that is not an object, is a failed reading.
fn read_health(env: &Env, handle: Value) -> Result<HealthReading> {
  if js::type_of(env, handle)? != Type::Object {
    return Ok(HealthReading::Failed);
  }
  let get_health = match js::get_catching(env, handle, c"getHealth")? {
    Ok(f) => f,
    Err(_) => return Ok(HealthReading::Failed),
  };
  if js::type_of(env, get_health)? != Type::Function {
    return Ok(HealthReading::Unavailable);
  }
  let health = match js::call(env, handle, get_health, &[])? {
    Ok(health) => health,
    Err(_) => return Ok(HealthReading::Failed),
  };
  if js::type_of(env, health)? != Type::Object {
    return Ok(HealthReading::Failed);
  }
  let (Ok(state), Ok(timed_out)) = (
    js::get_catching(env, health, c"state")?,
    js::get_catching(env, health, c"isTimedOut")?,
  ) else {
    return Ok(HealthReading::Failed);
  };
  let state = match js::type_of(env, state)? {
    Type::String => js::with_str(env, state, HealthState::parse)?,
    _ => HealthState::Unknown,
  };
  let timed_out = js::type_of(env, timed_out)? == Type::Boolean && {
    let mut flag = false;
    js::check(unsafe { napi::sys::napi_get_value_bool(env.raw(), timed_out, &mut flag) })?;
    flag
  };
  Ok(HealthReading::Reported { state, timed_out })
}

/// The function `onSessionClosed` returns, bound to its registry; its tag is
/// the listener's id. Calling it again does nothing.
unsafe extern "C" fn on_unsubscribe(
  raw_env: napi::sys::napi_env,
  info: napi::sys::napi_callback_info,
) -> Value {
  let env = Env::from_raw(raw_env);
  let result = (|| -> Result<()> {
    let info = unsafe { js::callback_info(&env, info) }?;
    let registry =
      unsafe { ClassInstance::<NitySessionRegistry>::from_napi_value(raw_env, info.this) }?;
    let removed = registry
      .hooks
      .borrow_mut()
      .remove(&env, &registry.js, info.tag as u64);
    removed
  })();
  if let Err(error) = result {
    unsafe { napi::JsError::from(error).throw_into(raw_env) };
  }
  std::ptr::null_mut()
}

//! `NitySessionRegistry`, the class JavaScript sees. It converts arguments,
//! keeps handles in the JavaScript state, and leaves every decision to the
//! core registry.

use std::cell::RefCell;
use std::time::Instant;

use napi::bindgen_prelude::{ClassInstance, FromNapiValue, ObjectFinalize, This, Unknown};
use napi::{Env, JsValue, Result};
use napi_derive::napi;

use crate::close_hooks::CloseHooks;
use crate::closing::{on_settled, Closing};
use crate::errors;
use crate::js::{self, Type, Value};
use crate::js_state::JsState;
use crate::stale_scan::StaleScans;
use nity_registry_core::{Error as CoreError, Registry, SessionStore, Slot, Unregister};

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
  pub(crate) scans: RefCell<StaleScans>,
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
    let settled = js::function_with_tag(env, "settled", on_settled, 0)?;
    let registry = NitySessionRegistry {
      core: RefCell::new(Registry::new()),
      js: JsState::attach(env, this, settled)?,
      hooks: RefCell::new(CloseHooks::default()),
      closing: RefCell::new(Closing::default()),
      scans: RefCell::new(StaleScans::default()),
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
    let session_type = js::type_of(env, session)?;
    if session_type != Type::Object {
      // The client id is checked first, as it comes first.
      expect_string(env, client_id, "clientId", "ERR_INVALID_CLIENT_ID")?;
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
    let close = js::get(env, session, c"close")?;
    let now = self.now();
    let registered = js::try_with_str(env, client_id, |client_id| {
      js::try_with_str(
        env,
        id,
        |session_id| -> Result<std::result::Result<Slot, Invalid>> {
          if !is_function(env, close)? {
            return Ok(Err(Invalid::Close));
          }
          Ok(self.core.borrow_mut().register(client_id, session_id, now).map_err(|error| {
          let same_client = matches!(&error, CoreError::AlreadyRegistered { client_id: owner, .. } if owner == client_id);
          Invalid::Core(error, same_client)
        }))
        },
      )
    })?;
    let result = match registered {
      None => return expect_string(env, client_id, "clientId", "ERR_INVALID_CLIENT_ID"),
      Some(inner) => match inner? {
        None => return expect_string(env, id, "session.id", "ERR_INVALID_SESSION"),
        Some(result) => result?,
      },
    };
    match result {
      Ok(slot) => self.js.put_handle(env, slot, session),
      Err(Invalid::Close) => Err(js::throw(
        env,
        true,
        "ERR_INVALID_SESSION",
        &format!(
          "session.close must be a function, got {}",
          js::type_of(env, close)?.describe()
        ),
      )),
      // Registering the very same handle under the same client again is a no-op.
      Err(Invalid::Core(CoreError::AlreadyRegistered { slot, .. }, true))
        if js::strict_equals(env, self.js.handle(env, slot)?, session)? =>
      {
        Ok(())
      }
      Err(Invalid::Core(error, _)) => Err(errors::throw(env, &error)),
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
    let now = self.now();
    let Some(outcome) = js::try_with_str(env, session_id, |id| {
      self.core.borrow_mut().unregister(id, now)
    })?
    else {
      let error = type_error(env, session_id, "sessionId", "ERR_INVALID_SESSION_ID")?;
      return unknown(env, js::rejected(env, error)?);
    };
    let promise = match outcome {
      Unregister::NotRegistered => js::resolved(env, js::undefined(env)?)?,
      Unregister::AlreadyClosing(ticket) => {
        let (waiter, promise) = self.new_promise(env)?;
        self.closing.borrow_mut().bystander(ticket, waiter);
        promise
      }
      Unregister::Close(order) => self.close_now(env, this.object.raw(), order)?,
    };
    unknown(env, promise)
  }

  /// Closes every session of a client concurrently and resolves with how
  /// many were removed (0 for an unknown client). Failed closes do not
  /// reject: they are reported to the close hooks.
  #[napi(ts_args_type = "clientId: string", ts_return_type = "Promise<number>")]
  pub fn cleanup_client<'env>(
    &self,
    env: &'env Env,
    this: This,
    client_id: Unknown,
  ) -> Result<Unknown<'env>> {
    let started = Instant::now();
    let client_id = client_id.raw();
    let now = self.now();
    let Some(orders) = js::try_with_str(env, client_id, |id| {
      self.core.borrow_mut().cleanup_client(id, now)
    })?
    else {
      let error = type_error(env, client_id, "clientId", "ERR_INVALID_CLIENT_ID")?;
      return unknown(env, js::rejected(env, error)?);
    };
    if orders.is_empty() {
      return unknown(env, js::resolved(env, js::number(env, 0.0)?)?);
    }
    let (batch, promise) = self.new_batch(env, false)?;
    self.close_later(env, this.object.raw(), orders, batch, started);
    unknown(env, promise)
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
    let slots = js::try_with_str(env, client_id, |id| {
      self
        .core
        .borrow()
        .store()
        .client_slots(id)
        .collect::<Vec<Slot>>()
    })?;
    match slots {
      None => Err(throw_type_error(
        env,
        client_id,
        "clientId",
        "ERR_INVALID_CLIENT_ID",
      )),
      Some(slots) if slots.is_empty() => unknown(env, js::array(env, 0)?),
      Some(slots) => unknown(env, self.js.pick(env, &slots)?),
    }
  }

  /// The session registered under this id, or `undefined`.
  #[napi(ts_args_type = "sessionId: string", ts_return_type = "H | undefined")]
  pub fn get_session<'env>(&self, env: &'env Env, session_id: Unknown) -> Result<Unknown<'env>> {
    let session_id = session_id.raw();
    match js::try_with_str(env, session_id, |id| self.core.borrow().session(id))? {
      None => Err(throw_type_error(
        env,
        session_id,
        "sessionId",
        "ERR_INVALID_SESSION_ID",
      )),
      Some(Some(slot)) => unknown(env, self.js.handle(env, slot)?),
      Some(None) => unknown(env, js::undefined(env)?),
    }
  }

  /// `{ totalSessions, activeClients, sessionsByClient }`, counted now.
  #[napi(ts_return_type = "NitySessionRegistryStats")]
  pub fn get_stats<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    // The per-client counts are mirrored in a JavaScript object and only
    // the clients that changed since the last call are brought up to date.
    let (changes, total, clients) = {
      let mut core = self.core.borrow_mut();
      let changes = core.take_client_changes();
      let store = core.store();
      (changes, store.session_count(), store.client_count())
    };
    self.js.update_counts(env, &changes)?;
    unknown(env, self.js.stats(env, total, clients)?)
  }

  /// Asks every session for its health and closes those that are timed out
  /// or in the error state (a `getHealth()` that throws counts as error; a
  /// session without `getHealth` is left alone). Resolves with the number
  /// removed; failed closes are reported to the close hooks. Large
  /// registries are scanned in slices that yield to the event loop.
  #[napi(ts_args_type = "", ts_return_type = "Promise<number>")]
  pub fn cleanup_stale<'env>(&self, env: &'env Env, this: This) -> Result<Unknown<'env>> {
    unknown(env, self.start_stale_scan(env, this.object.raw())?)
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

/// Why `register` refused.
enum Invalid {
  Close,
  Core(CoreError, bool),
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
}

fn unknown<'env>(env: &'env Env, value: Value) -> Result<Unknown<'env>> {
  unsafe { Unknown::from_napi_value(env.raw(), value) }
}

fn is_function(env: &Env, value: Value) -> Result<bool> {
  Ok(js::type_of(env, value)? == Type::Function)
}

/// The `TypeError` for a value that should have been a non-empty string.
fn type_error(env: &Env, value: Value, name: &str, code: &str) -> Result<Value> {
  let message = format!(
    "{name} must be a non-empty string, got {}",
    js::type_of(env, value)?.describe()
  );
  js::error(env, true, code, &message)
}

fn throw_type_error(env: &Env, value: Value, name: &str, code: &str) -> napi::Error {
  match type_error(env, value, name, code) {
    Ok(error) => match js::check(unsafe { napi::sys::napi_throw(env.raw(), error) }) {
      Ok(()) => js::pending(),
      Err(e) => e,
    },
    Err(e) => e,
  }
}

/// `Ok` for a string; otherwise throws the `TypeError` for it.
fn expect_string(env: &Env, value: Value, name: &str, code: &str) -> Result<()> {
  if js::type_of(env, value)? == Type::String {
    return Ok(());
  }
  Err(throw_type_error(env, value, name, code))
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

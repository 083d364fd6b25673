//! `NitySessionRegistry`, the class JavaScript sees. It converts arguments,
//! keeps handles in the JavaScript state, and leaves every decision to the
//! core registry.

use std::cell::RefCell;
use std::time::Instant;

use napi::bindgen_prelude::{ClassInstance, FromNapiValue, ObjectFinalize, This, Unknown};
use napi::{Env, JsValue, Result};
use napi_derive::napi;

use crate::close_hooks::CloseHooks;
use crate::closing::{on_settled, BatchDone, Closing};
use crate::errors;
use crate::js::{self, Type, Value};
use crate::js_state::JsState;
use crate::lifecycle::{AutoCleanup, Deadlines, TimeSource};
use crate::options::Options;
use crate::reporting;
use crate::stale_scan::StaleScans;
use nity_registry_core::{Cursor, Error as CoreError, Registry, SessionStore, Slot, Unregister};

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
  pub(crate) time: TimeSource,
  pub(crate) auto: RefCell<AutoCleanup>,
  pub(crate) deadlines: RefCell<Deadlines>,
  pub(crate) close_timeout_ms: f64,
  cleanup_interval_ms: Option<f64>,
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
    let options = Options::read(env, options.map(|o| o.raw()))?;
    let settled = js::function_with_tag(env, "settled", on_settled, 0)?;
    let mut core = Registry::new();
    core.set_policy(options.policy);
    let registry = NitySessionRegistry {
      core: RefCell::new(core),
      js: JsState::attach(env, this, settled, options.clock)?,
      hooks: RefCell::new(CloseHooks::default()),
      closing: RefCell::new(Closing::default()),
      scans: RefCell::new(StaleScans::default()),
      time: TimeSource::new(),
      auto: RefCell::new(AutoCleanup::default()),
      deadlines: RefCell::new(Deadlines::default()),
      close_timeout_ms: options.close_timeout_ms,
      cleanup_interval_ms: options.cleanup_interval_ms,
    };
    if let Some(listener) = options.listener {
      registry.subscribe(env, listener)?;
    }
    if let Some(interval) = options.cleanup_interval_ms {
      registry.begin_auto_cleanup(env, this, interval)?;
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
  pub fn register(
    &self,
    env: &Env,
    this: This,
    client_id: Unknown,
    session: Unknown,
  ) -> Result<()> {
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
    let now = self.now(env);
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
      Err(Invalid::Core(
        CoreError::SessionLimit { .. } | CoreError::ClientSessionLimit { .. },
        _,
      )) if self.core.borrow().policy().evict_idle => {
        self.register_evicting(env, this.object.raw(), client_id, id, session)
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
    let now = self.now(env);
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
    let now = self.now(env);
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
      Some(slots) => {
        // Handing the sessions out counts as their activity.
        let now = self.now(env);
        {
          let mut core = self.core.borrow_mut();
          for &slot in &slots {
            core.note_lookup(slot, now);
          }
        }
        unknown(env, self.js.pick(env, &slots)?)
      }
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
      Some(Some(slot)) => {
        // Handing the session out counts as its activity.
        let now = self.now(env);
        self.core.borrow_mut().note_lookup(slot, now);
        unknown(env, self.js.handle(env, slot)?)
      }
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

  /// Records activity of a session, for the idle timeout and eviction order;
  /// `false` when it is not registered.
  #[napi(ts_args_type = "sessionId: string")]
  pub fn touch(&self, env: &Env, session_id: Unknown) -> Result<bool> {
    let session_id = session_id.raw();
    let now = self.now(env);
    js::try_with_str(env, session_id, |id| {
      self.core.borrow_mut().touch_session(id, now)
    })?
    .ok_or_else(|| throw_type_error(env, session_id, "sessionId", "ERR_INVALID_SESSION_ID"))
  }

  /// Merges numeric metrics into a session's record (a name given again
  /// replaces its value); `false` when the session is not registered. Every
  /// value must be a finite number, or nothing is merged.
  #[napi(ts_args_type = "sessionId: string, metrics: Record<string, number>")]
  pub fn update_metrics(&self, env: &Env, session_id: Unknown, metrics: Unknown) -> Result<bool> {
    let (session_id, metrics) = (session_id.raw(), metrics.raw());
    if js::type_of(env, session_id)? != Type::String {
      return Err(throw_type_error(
        env,
        session_id,
        "sessionId",
        "ERR_INVALID_SESSION_ID",
      ));
    }
    let updates = read_metrics(env, metrics)?;
    let pairs: Vec<(&str, f64)> = updates
      .iter()
      .map(|(name, value)| (name.as_str(), *value))
      .collect();
    js::with_str(env, session_id, |id| {
      self.core.borrow_mut().update_metrics(id, &pairs)
    })
  }

  /// `{ sessionId, clientId, registeredAt, lastActivityAt, metrics }` of a
  /// registered session, or `undefined`. Does not count as activity.
  #[napi(
    ts_args_type = "sessionId: string",
    ts_return_type = "NitySessionInfo | undefined"
  )]
  pub fn get_session_info<'env>(
    &self,
    env: &'env Env,
    session_id: Unknown,
  ) -> Result<Unknown<'env>> {
    let session_id = session_id.raw();
    let slot = js::try_with_str(env, session_id, |id| self.core.borrow().session(id))?
      .ok_or_else(|| throw_type_error(env, session_id, "sessionId", "ERR_INVALID_SESSION_ID"))?;
    let core = self.core.borrow();
    match slot.and_then(|slot| core.session_info(slot)) {
      Some(info) => unknown(env, reporting::session_info(env, &info)?),
      None => unknown(env, js::undefined(env)?),
    }
  }

  /// Aggregate metrics since the registry was created, kept up to date as
  /// sessions come and go.
  #[napi(ts_return_type = "NitySessionRegistryMetrics")]
  pub fn get_metrics<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    let metrics = self.core.borrow().metrics();
    unknown(env, reporting::metrics(env, &metrics)?)
  }

  /// One page of `getSessionInfo` rows in registration order, all sessions
  /// or one client's; pass the returned `next` as `after` for the next page.
  #[napi(
    ts_args_type = "options?: NitySessionListOptions",
    ts_return_type = "NitySessionPage"
  )]
  pub fn list<'env>(&self, env: &'env Env, options: Option<Unknown>) -> Result<Unknown<'env>> {
    let (client, after, limit) = read_list_options(env, options.map(|o| o.raw()))?;
    let (slots, next) = self.core.borrow().list(client.as_deref(), after, limit);
    let core = self.core.borrow();
    let rows = slots
      .into_iter()
      .filter_map(|slot| core.session_info(slot))
      .map(|info| reporting::session_info(env, &info))
      .collect::<Result<Vec<_>>>()?;
    unknown(env, reporting::page(env, &rows, next)?)
  }

  /// Closes every session (reason `'shutdown'`) under the close deadline and
  /// the concurrency bound; resolves with how many were removed.
  #[napi(ts_args_type = "", ts_return_type = "Promise<number>")]
  pub fn close_all<'env>(&self, env: &'env Env, this: This) -> Result<Unknown<'env>> {
    unknown(env, self.shut(env, this.object.raw())?)
  }

  /// `closeAll()`, and after it the registry takes no more sessions
  /// (`register` throws `ERR_REGISTRY_DISPOSED`) and its automatic cleanup
  /// stops. Calling it again resolves with 0.
  #[napi(ts_args_type = "", ts_return_type = "Promise<number>")]
  pub fn dispose<'env>(&self, env: &'env Env, this: This) -> Result<Unknown<'env>> {
    self.core.borrow_mut().dispose();
    self.end_auto_cleanup(env)?;
    unknown(env, self.shut(env, this.object.raw())?)
  }

  /// Runs the stale cleanup every `intervalMs` (default: the
  /// `cleanupIntervalMs` option), each run starting `intervalMs` after the
  /// previous one finished. Restarting changes the interval.
  #[napi(ts_args_type = "intervalMs?: number")]
  pub fn start_auto_cleanup(
    &self,
    env: &Env,
    this: This,
    interval_ms: Option<Unknown>,
  ) -> Result<()> {
    if self.core.borrow().is_disposed() {
      return Err(errors::throw(env, &CoreError::Disposed));
    }
    let interval = match interval_ms.map(|v| v.raw()) {
      Some(value) if js::type_of(env, value)? != Type::Undefined => {
        let ms = if js::type_of(env, value)? == Type::Number { js::to_f64(env, value)? } else { f64::NAN };
        if !(ms.is_finite() && ms > 0.0) {
          return Err(js::throw(env, true, "ERR_INVALID_ARG", "intervalMs must be a positive number of milliseconds"));
        }
        ms
      }
      _ => match self.auto_cleanup_interval().or(self.cleanup_interval_ms) {
        Some(ms) => ms,
        None => {
          return Err(js::throw(
            env,
            true,
            "ERR_INVALID_ARG",
            "startAutoCleanup() needs an interval: pass intervalMs or set the cleanupIntervalMs option",
          ))
        }
      },
    };
    self.begin_auto_cleanup(env, this.object.raw(), interval)
  }

  /// Stops the automatic stale cleanup. Idempotent.
  #[napi]
  pub fn stop_auto_cleanup(&self, env: &Env) -> Result<()> {
    self.end_auto_cleanup(env)
  }
}

/// Why `register` refused.
enum Invalid {
  Close,
  Core(CoreError, bool),
}

impl NitySessionRegistry {
  /// Removes every session and closes it with reason `Shutdown`; a promise
  /// for the count.
  fn shut(&self, env: &Env, this: Value) -> Result<Value> {
    let started = Instant::now();
    let now = self.now(env);
    let orders = self.core.borrow_mut().close_all(now);
    if orders.is_empty() {
      return js::resolved(env, js::number(env, 0.0)?);
    }
    let (batch, promise) = self.new_batch(env, false)?;
    self.close_later(env, this, orders, batch, started);
    Ok(promise)
  }

  /// `register` in a full registry with `evictIdle`: finds the least
  /// recently active session that says it is not running (asking in small
  /// batches, least recently active first), then evicts it and registers in
  /// one step of the core. `isRunning()` may call back into the registry,
  /// so the core re-checks that the victim still makes room; if it no
  /// longer does, the search starts over, a few times at most.
  fn register_evicting(
    &self,
    env: &Env,
    this: Value,
    client_id: Value,
    id: Value,
    session: Value,
  ) -> Result<()> {
    const BATCH: usize = 32;
    const ATTEMPTS: usize = 3;
    let client = js::with_str(env, client_id, str::to_owned)?;
    let session_id = js::with_str(env, id, str::to_owned)?;
    for _ in 0..ATTEMPTS {
      let Some(scope) = self.core.borrow().full(&client) else {
        // Room appeared meanwhile (a close or unregister in isRunning()).
        let now = self.now(env);
        let slot = self.core.borrow_mut().register(&client, &session_id, now);
        return match slot {
          Ok(slot) => self.js.put_handle(env, slot, session),
          Err(error) => Err(errors::throw(env, &error)),
        };
      };
      let mut skip = 0;
      let victim = loop {
        let candidates = self
          .core
          .borrow()
          .eviction_candidates(scope, &client, skip, BATCH);
        if candidates.is_empty() {
          break None;
        }
        let slots: Vec<Slot> = candidates.iter().map(|&(slot, _)| slot).collect();
        if let Some(index) = self.js.first_idle(env, &slots)? {
          break Some(candidates[index]);
        }
        skip += candidates.len();
      };
      let Some(victim) = victim else {
        let error = self.core.borrow().limit_error(scope, &client);
        return Err(errors::throw(env, &error));
      };
      let now = self.now(env);
      let result = self
        .core
        .borrow_mut()
        .register_evicting(&client, &session_id, victim, now);
      match result {
        Ok((slot, evicted)) => {
          // The new session may have been given the victim's slot: the
          // victim's handle goes to the close queue first, then the new
          // handle takes the slot, then the victim's close may run.
          let batch = evicted.map(|order| {
            let batch = self.quiet_batch(BatchDone::Nothing, false);
            self.enqueue(env, this, vec![order], batch);
            batch
          });
          let stored = self.js.put_handle(env, slot, session);
          if batch.is_some() {
            self.pump(env, this, Instant::now());
          }
          return stored;
        }
        Err(CoreError::SessionLimit { .. } | CoreError::ClientSessionLimit { .. }) => continue,
        Err(error) => return Err(errors::throw(env, &error)),
      }
    }
    let scope = self.core.borrow().full(&client);
    let error = match scope {
      Some(scope) => self.core.borrow().limit_error(scope, &client),
      None => CoreError::SessionLimit { max: 0 },
    };
    Err(errors::throw(env, &error))
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
}

/// The own enumerable properties of a metrics object, each a finite number.
fn read_metrics(env: &Env, metrics: Value) -> Result<Vec<(String, f64)>> {
  if js::type_of(env, metrics)? != Type::Object {
    return Err(js::throw(
      env,
      true,
      "ERR_INVALID_METRICS",
      "metrics must be an object of numbers",
    ));
  }
  let mut names = std::ptr::null_mut();
  js::check(unsafe { napi::sys::napi_get_property_names(env.raw(), metrics, &mut names) })?;
  let mut count = 0u32;
  js::check(unsafe { napi::sys::napi_get_array_length(env.raw(), names, &mut count) })?;
  let mut read = Vec::with_capacity(count as usize);
  for index in 0..count {
    let name = js::get_element(env, names, index)?;
    let mut value = std::ptr::null_mut();
    js::check(unsafe { napi::sys::napi_get_property(env.raw(), metrics, name, &mut value) })?;
    let name = js::with_str(env, name, str::to_owned)?;
    let number = if js::type_of(env, value)? == Type::Number {
      js::to_f64(env, value)?
    } else {
      f64::NAN
    };
    if !number.is_finite() {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_METRICS",
        &format!(
          "metric '{name}' must be a finite number, got {}",
          js::type_of(env, value)?.describe()
        ),
      ));
    }
    read.push((name, number));
  }
  Ok(read)
}

/// `{ clientId?, limit?, after? }` of `list()`; `limit` defaults to 100.
fn read_list_options(
  env: &Env,
  options: Option<Value>,
) -> Result<(Option<String>, Option<Cursor>, usize)> {
  const DEFAULT_LIMIT: usize = 100;
  let Some(options) = options else {
    return Ok((None, None, DEFAULT_LIMIT));
  };
  match js::type_of(env, options)? {
    Type::Undefined | Type::Null => return Ok((None, None, DEFAULT_LIMIT)),
    Type::Object => {}
    other => {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_ARG",
        &format!("list options must be an object, got {}", other.describe()),
      ))
    }
  }
  let client = js::get(env, options, c"clientId")?;
  let client = match js::type_of(env, client)? {
    Type::Undefined => None,
    Type::String => Some(js::with_str(env, client, str::to_owned)?),
    _ => {
      return Err(throw_type_error(
        env,
        client,
        "clientId",
        "ERR_INVALID_CLIENT_ID",
      ))
    }
  };
  let limit = js::get(env, options, c"limit")?;
  let limit = match js::type_of(env, limit)? {
    Type::Undefined => DEFAULT_LIMIT,
    Type::Number => {
      let n = js::to_f64(env, limit)?;
      if !(n.is_finite() && n >= 1.0 && n.fract() == 0.0) {
        return Err(js::throw(
          env,
          true,
          "ERR_INVALID_ARG",
          &format!("limit must be a positive integer, got {n}"),
        ));
      }
      n.min(u32::MAX as f64) as usize
    }
    other => {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_ARG",
        &format!("limit must be a positive integer, got {}", other.describe()),
      ))
    }
  };
  let after = js::get(env, options, c"after")?;
  let after = match js::type_of(env, after)? {
    Type::Undefined => None,
    Type::String => {
      let cursor = js::with_str(env, after, Cursor::decode)?;
      Some(cursor.map_err(|error| errors::throw(env, &error))?)
    }
    other => {
      return Err(js::throw(
        env,
        true,
        "ERR_INVALID_CURSOR",
        &format!(
          "after must be a cursor string from list(), got {}",
          other.describe()
        ),
      ))
    }
  };
  Ok((client, after, limit))
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

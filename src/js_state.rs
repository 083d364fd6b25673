//! Where a registry keeps its JavaScript values: the session handles, indexed
//! by the core's slots; the close listeners; the resolve and reject functions
//! of its pending promises; and its script functions (see `script.rs`).
//!
//! All of them hang off the registry object itself, under a hidden symbol
//! property, and the native side reaches them only through weak references.
//! So nothing the registry holds is a garbage-collection root: a handle that
//! points back at its registry, a listener that closes over it, or a promise
//! that is awaited by code using it, is collected together with a registry
//! that was dropped without cleanup.

use napi::{Env, Error, Result, Status};

use crate::js::{self, Value, WeakRef};
use crate::script;
use nity_registry_core::Slot;

pub struct JsState {
  handles: WeakRef,
  listeners: WeakRef,
  waiters: WeakRef,
  deferred: WeakRef,
  settle: WeakRef,
}

impl JsState {
  /// Creates the arrays, compiles the script, and attaches everything to
  /// `this` for as long as it lives.
  pub fn attach(env: &Env, this: Value) -> Result<Self> {
    let handles = js::array(env, 0)?;
    let listeners = js::array(env, 0)?;
    let waiters = js::array(env, 0)?;
    let functions = js::run_script(env, script::SOURCE)?;
    let deferred = js::get(env, functions, c"deferred")?;
    let settle = js::get(env, functions, c"settle")?;
    let holder = js::array(env, 4)?;
    for (index, value) in [handles, listeners, waiters, functions]
      .into_iter()
      .enumerate()
    {
      js::set_element(env, holder, index as u32, value)?;
    }
    let key = js::symbol(env, "nity-session-registry.state")?;
    js::define_hidden(env, this, key, holder)?;
    Ok(JsState {
      handles: WeakRef::new(env, handles)?,
      listeners: WeakRef::new(env, listeners)?,
      waiters: WeakRef::new(env, waiters)?,
      deferred: WeakRef::new(env, deferred)?,
      settle: WeakRef::new(env, settle)?,
    })
  }

  /// Releases the weak references; the values go with the registry object.
  pub fn release(self, env: &Env) {
    for reference in [
      self.handles,
      self.listeners,
      self.waiters,
      self.deferred,
      self.settle,
    ] {
      reference.delete(env);
    }
  }

  pub fn handles(&self, env: &Env) -> Result<Value> {
    live(self.handles.get(env)?)
  }

  pub fn listeners(&self, env: &Env) -> Result<Value> {
    live(self.listeners.get(env)?)
  }

  /// The handle registered in `slot`.
  pub fn handle(&self, env: &Env, slot: Slot) -> Result<Value> {
    js::get_element(env, self.handles(env)?, slot)
  }

  pub fn put_handle(&self, env: &Env, slot: Slot, handle: Value) -> Result<()> {
    js::set_element(env, self.handles(env)?, slot, handle)
  }

  /// Takes the handle out of `slot`, so the registry no longer keeps it alive.
  pub fn take_handle(&self, env: &Env, slot: Slot) -> Result<Value> {
    let handles = self.handles(env)?;
    let handle = js::get_element(env, handles, slot)?;
    js::set_element(env, handles, slot, js::undefined(env)?)?;
    Ok(handle)
  }

  /// A new pending promise whose settle functions are kept in waiter slot `waiter`.
  pub fn promise(&self, env: &Env, waiter: u32) -> Result<Value> {
    let deferred = live(self.deferred.get(env)?)?;
    let args = [
      live(self.waiters.get(env)?)?,
      js::number(env, f64::from(waiter))?,
    ];
    call_script(env, deferred, &args)
  }

  /// Settles the promise in waiter slot `waiter` and empties the slot.
  pub fn settle(&self, env: &Env, waiter: u32, fulfilled: bool, value: Value) -> Result<()> {
    let settle = live(self.settle.get(env)?)?;
    let args = [
      live(self.waiters.get(env)?)?,
      js::number(env, f64::from(waiter))?,
      js::boolean(env, fulfilled)?,
      value,
    ];
    call_script(env, settle, &args).map(drop)
  }
}

/// Calls one of the script's functions, which never throw for valid arguments.
fn call_script(env: &Env, function: Value, args: &[Value]) -> Result<Value> {
  match js::call(env, js::undefined(env)?, function, args)? {
    Ok(value) => Ok(value),
    Err(thrown) => {
      js::check(unsafe { napi::sys::napi_throw(env.raw(), thrown) })?;
      Err(js::pending())
    }
  }
}

/// The values live exactly as long as the registry object, and every caller
/// reaches them through that object; a collected value is a bug.
fn live(value: Option<Value>) -> Result<Value> {
  value.ok_or_else(|| {
    Error::new(
      Status::GenericFailure,
      "nity-session-registry: the registry's JavaScript state was collected while in use"
        .to_owned(),
    )
  })
}

//! Where a registry keeps its JavaScript values: the session handles, indexed
//! by the core's slots, and the close listeners.
//!
//! Both arrays hang off the registry object itself, under a hidden symbol
//! property, and the native side reaches them only through weak references.
//! So nothing the registry holds is a garbage-collection root: a handle that
//! points back at its registry, or a listener that closes over it, is
//! collected together with a registry that was dropped without cleanup.

use napi::{Env, Error, Result, Status};

use crate::js::{self, Value, WeakRef};
use nity_registry_core::Slot;

pub struct JsState {
  handles: WeakRef,
  listeners: WeakRef,
}

impl JsState {
  /// Creates the arrays and attaches them to `this` for as long as it lives.
  pub fn attach(env: &Env, this: Value) -> Result<Self> {
    let handles = js::array(env, 0)?;
    let listeners = js::array(env, 0)?;
    let holder = js::array(env, 2)?;
    js::set_element(env, holder, 0, handles)?;
    js::set_element(env, holder, 1, listeners)?;
    let key = js::symbol(env, "nity-session-registry.state")?;
    js::define_hidden(env, this, key, holder)?;
    Ok(JsState {
      handles: WeakRef::new(env, handles)?,
      listeners: WeakRef::new(env, listeners)?,
    })
  }

  /// Releases the weak references; the arrays go with the registry object.
  pub fn release(self, env: &Env) {
    self.handles.delete(env);
    self.listeners.delete(env);
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
}

/// The arrays live exactly as long as the registry object, and every caller
/// reaches them through that object; a collected array is a bug.
fn live(value: Option<Value>) -> Result<Value> {
  value.ok_or_else(|| {
    Error::new(
      Status::GenericFailure,
      "nity-session-registry: the registry's handle table was collected while in use".to_owned(),
    )
  })
}

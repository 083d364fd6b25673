//! Carrying out closes the core has ordered: calling each handle's `close()`
//! as a method, following what it returns, and settling everyone waiting.
//!
//! Every close ends in exactly one [`NitySessionRegistry::finish_close`],
//! whatever `close()` does: returns, throws, returns a promise that fulfils
//! or rejects, or hands back a thenable that misbehaves. The core ignores a
//! second report for the same ticket, so a thenable that calls both of its
//! callbacks cannot settle a close twice.

use std::collections::HashMap;
use std::ptr;

use napi::bindgen_prelude::{ClassInstance, FromNapiValue};
use napi::{sys, Env, Result};

use crate::close_hooks;
use crate::js::{self, Value};
use crate::registry::NitySessionRegistry;
use nity_registry_core::{CloseOrder, CloseOutcome, Ticket};

/// Who is waiting for a close to end. Promises are named by their waiter
/// slot in the registry's JavaScript state.
pub enum Waiter {
  /// The `unregister` that closed the session: rejects with the handle's error.
  Caller(u32),
  /// An `unregister` of a session that was already closing: resolves once it ends.
  Bystander(u32),
  /// One session of a bulk cleanup.
  Batch(u64),
}

struct Batch {
  remaining: usize,
  removed: usize,
  waiter: u32,
}

/// The promises waiting on closes in flight.
#[derive(Default)]
pub struct Closing {
  waiters: HashMap<Ticket, Vec<Waiter>>,
  batches: HashMap<u64, Batch>,
  next_batch: u64,
  free_slots: Vec<u32>,
  next_slot: u32,
}

impl Closing {
  /// Reserves a waiter slot for a new promise.
  pub fn reserve(&mut self) -> u32 {
    self.free_slots.pop().unwrap_or_else(|| {
      self.next_slot += 1;
      self.next_slot - 1
    })
  }

  /// Returns a slot whose promise is settled.
  pub fn release(&mut self, slot: u32) {
    self.free_slots.push(slot);
  }

  pub fn wait(&mut self, ticket: Ticket, waiter: Waiter) {
    self.waiters.entry(ticket).or_default().push(waiter);
  }

  /// A bulk cleanup of `removed` sessions whose promise, in `waiter`, resolves
  /// with that count once each of them has settled.
  pub fn batch(&mut self, waiter: u32, removed: usize) -> u64 {
    self.next_batch += 1;
    self.batches.insert(
      self.next_batch,
      Batch {
        remaining: removed,
        removed,
        waiter,
      },
    );
    self.next_batch
  }

  fn take(&mut self, ticket: Ticket) -> Vec<Waiter> {
    self.waiters.remove(&ticket).unwrap_or_default()
  }

  /// Counts one member of a batch as done; hands back the batch's waiter
  /// slot and count when it was the last.
  fn member_done(&mut self, batch: u64) -> Option<(u32, usize)> {
    let entry = self.batches.get_mut(&batch)?;
    entry.remaining -= 1;
    if entry.remaining > 0 {
      return None;
    }
    let done = self.batches.remove(&batch)?;
    Some((done.waiter, done.removed))
  }
}

/// Packs a ticket and "was it the rejection callback" into a function's tag.
fn tag(ticket: Ticket, rejected: bool) -> usize {
  ((ticket as usize) << 1) | usize::from(rejected)
}

impl NitySessionRegistry {
  /// Closes sessions the core has already removed. All handles are taken out
  /// of their slots before any user code runs, because a `close()` that
  /// registers a new session may be handed one of those slots.
  pub(crate) fn close_orders(
    &self,
    env: &Env,
    this: Value,
    orders: Vec<CloseOrder>,
    mut waiter: impl FnMut(Ticket) -> Waiter,
  ) {
    let mut taken = Vec::with_capacity(orders.len());
    for order in orders {
      // Should the handle table fail, the close still runs (and fails) so
      // that nobody waits forever.
      let handle = self
        .js
        .take_handle(env, order.slot)
        .unwrap_or(ptr::null_mut());
      self
        .closing
        .borrow_mut()
        .wait(order.ticket, waiter(order.ticket));
      taken.push((order.ticket, handle));
    }
    for (ticket, handle) in taken {
      self.begin_close(env, this, ticket, handle);
    }
  }

  /// Calls `handle.close()` and arranges for [`Self::finish_close`]. Never throws.
  pub(crate) fn begin_close(&self, env: &Env, this: Value, ticket: Ticket, handle: Value) {
    let settled = match call_close(env, this, ticket, handle) {
      Ok(None) => return,
      Ok(Some(settled)) => settled,
      Err(e) => {
        js::clear_pending(env);
        let error = js::error(env, false, "ERR_CLOSE_FAILED", &e.reason).ok();
        (CloseOutcome::Failed, error)
      }
    };
    self.finish_close(env, ticket, settled.0, settled.1);
  }

  /// Records the end of a close, tells the close hooks, and settles the
  /// promises waiting on it. Only the first call per ticket has any effect.
  /// Never throws.
  pub(crate) fn finish_close(
    &self,
    env: &Env,
    ticket: Ticket,
    outcome: CloseOutcome,
    error: Option<Value>,
  ) {
    let now = self.now();
    let Some(report) = self.core.borrow_mut().settle(ticket, outcome, now) else {
      return;
    };
    if !self.hooks.borrow().is_empty() {
      let listeners = self.hooks.borrow().snapshot(env, &self.js);
      if let (Ok(listeners), Ok(event)) = (listeners, close_hooks::event(env, &report, error)) {
        close_hooks::deliver(env, &listeners, event);
      }
      js::clear_pending(env);
    }
    let waiters = self.closing.borrow_mut().take(ticket);
    for waiter in waiters {
      let (slot, fulfilled, value) = match waiter {
        Waiter::Caller(slot) => match outcome {
          CloseOutcome::Failed => (slot, false, error.map_or_else(|| js::undefined(env), Ok)),
          CloseOutcome::Closed => (slot, true, js::undefined(env)),
        },
        Waiter::Bystander(slot) => (slot, true, js::undefined(env)),
        Waiter::Batch(batch) => {
          let done = self.closing.borrow_mut().member_done(batch);
          match done {
            Some((slot, removed)) => (slot, true, js::number(env, removed as f64)),
            None => continue,
          }
        }
      };
      self.resolve_waiter(env, slot, fulfilled, value);
    }
    js::clear_pending(env);
  }
}

impl NitySessionRegistry {
  /// A new pending promise and the waiter slot that settles it.
  pub(crate) fn new_promise(&self, env: &Env) -> Result<(u32, Value)> {
    let slot = self.closing.borrow_mut().reserve();
    match self.js.promise(env, slot) {
      Ok(promise) => Ok((slot, promise)),
      Err(e) => {
        self.closing.borrow_mut().release(slot);
        Err(e)
      }
    }
  }

  /// Settles the promise in a waiter slot and frees the slot. Never throws.
  fn resolve_waiter(&self, env: &Env, slot: u32, fulfilled: bool, value: Result<Value>) {
    let _ = value.and_then(|value| self.js.settle(env, slot, fulfilled, value));
    self.closing.borrow_mut().release(slot);
  }
}

/// Calls `close()` as a method of the handle. `Ok(None)` means it returned a
/// thenable and the settle callbacks are attached; otherwise the close has
/// already ended.
fn call_close(
  env: &Env,
  this: Value,
  ticket: Ticket,
  handle: Value,
) -> Result<Option<(CloseOutcome, Option<Value>)>> {
  let close = match js::get_catching(env, handle, c"close")? {
    Ok(close) => close,
    Err(thrown) => return Ok(Some((CloseOutcome::Failed, Some(thrown)))),
  };
  if js::type_of(env, close)? != js::Type::Function {
    let error = js::error(
      env,
      true,
      "ERR_INVALID_SESSION",
      "session.close is not a function",
    )?;
    return Ok(Some((CloseOutcome::Failed, Some(error))));
  }
  let result = match js::call(env, handle, close, &[])? {
    Ok(result) => result,
    Err(thrown) => return Ok(Some((CloseOutcome::Failed, Some(thrown)))),
  };
  if !matches!(
    js::type_of(env, result)?,
    js::Type::Object | js::Type::Function
  ) {
    return Ok(Some((CloseOutcome::Closed, None)));
  }
  let then = match js::get_catching(env, result, c"then")? {
    Ok(then) => then,
    Err(thrown) => return Ok(Some((CloseOutcome::Failed, Some(thrown)))),
  };
  if js::type_of(env, then)? != js::Type::Function {
    return Ok(Some((CloseOutcome::Closed, None)));
  }
  // The callbacks find their registry through `this`, bound here, rather
  // than through a reference the registry would have to keep and release.
  let on_fulfilled = js::function_with_tag(env, "closeFulfilled", on_settled, tag(ticket, false))?;
  let on_rejected = js::function_with_tag(env, "closeRejected", on_settled, tag(ticket, true))?;
  let on_fulfilled = js::bind(env, on_fulfilled, this)?;
  let on_rejected = js::bind(env, on_rejected, this)?;
  match js::call(env, result, then, &[on_fulfilled, on_rejected])? {
    Ok(_) => Ok(None),
    Err(thrown) => Ok(Some((CloseOutcome::Failed, Some(thrown)))),
  }
}

/// The fulfilment and rejection callback of a close's promise. It must never
/// throw: the promise `then` returns is not observed by anyone.
unsafe extern "C" fn on_settled(raw_env: sys::napi_env, info: sys::napi_callback_info) -> Value {
  let env = Env::from_raw(raw_env);
  let _ = (|| -> Result<()> {
    let info = unsafe { js::callback_info(&env, info) }?;
    let registry =
      unsafe { ClassInstance::<NitySessionRegistry>::from_napi_value(raw_env, info.this) }?;
    let ticket = (info.tag >> 1) as Ticket;
    if info.tag & 1 == 1 {
      registry.finish_close(&env, ticket, CloseOutcome::Failed, Some(info.args[0]));
    } else {
      registry.finish_close(&env, ticket, CloseOutcome::Closed, None);
    }
    Ok(())
  })();
  js::clear_pending(&env);
  ptr::null_mut()
}

//! Carrying out the closes the core has ordered, and settling everyone who
//! waits on them.
//!
//! `unregister` starts its one close at once. Bulk cleanups park their
//! handles in a queue that a pump drains in slices of a few milliseconds,
//! yielding to the event loop between slices, so that closing ten thousand
//! sessions never stalls the process.
//!
//! Every close ends in exactly one [`NitySessionRegistry::finish_close`],
//! whatever `close()` does; the core ignores a second report for the same
//! ticket, so a thenable that calls both of its callbacks cannot settle a
//! close twice.

use std::collections::{HashMap, VecDeque};
use std::ptr;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{ClassInstance, FromNapiValue};
use napi::{sys, Env, Result};

use crate::close_hooks;
use crate::js::{self, Value};
use crate::registry::NitySessionRegistry;
use nity_registry_core::{CloseOrder, CloseOutcome, Ticket};

/// How long one slice of bulk work may hold the event loop.
pub const SLICE: Duration = Duration::from_millis(3);

/// Who is waiting for a close to end. Promises are named by their waiter
/// slot in the registry's JavaScript state.
#[derive(Clone, Copy)]
pub enum Waiter {
  /// The `unregister` that closed the session: rejects with the handle's error.
  Caller(u32),
  /// One session of a bulk cleanup.
  Batch(u64),
}

struct Batch {
  /// Members whose close has not ended.
  remaining: usize,
  /// Members so far: the count the promise resolves with.
  removed: usize,
  /// Whether more members may still join (a stale scan in progress).
  open: bool,
  waiter: u32,
}

/// Closes waiting to start, and the promises waiting on closes in flight.
#[derive(Default)]
pub struct Closing {
  primary: HashMap<Ticket, Waiter>,
  /// `unregister` calls that found the session already closing.
  bystanders: HashMap<Ticket, Vec<u32>>,
  batches: HashMap<u64, Batch>,
  next_batch: u64,
  free_waiters: Vec<u32>,
  next_waiter: u32,
  /// Closes not started yet, with where their handle is parked.
  queue: VecDeque<(Ticket, u32)>,
  free_parking: Vec<u32>,
  next_parking: u32,
  pump_scheduled: bool,
}

impl Closing {
  fn reserve_waiter(&mut self) -> u32 {
    self.free_waiters.pop().unwrap_or_else(|| {
      self.next_waiter += 1;
      self.next_waiter - 1
    })
  }

  fn reserve_parking(&mut self) -> u32 {
    self.free_parking.pop().unwrap_or_else(|| {
      self.next_parking += 1;
      self.next_parking - 1
    })
  }

  /// Opens a batch whose promise is in `waiter`; `open` batches take more
  /// members until sealed.
  pub fn batch(&mut self, waiter: u32, open: bool) -> u64 {
    self.next_batch += 1;
    self.batches.insert(
      self.next_batch,
      Batch {
        remaining: 0,
        removed: 0,
        open,
        waiter,
      },
    );
    self.next_batch
  }

  fn join(&mut self, batch: u64, members: usize) {
    if let Some(entry) = self.batches.get_mut(&batch) {
      entry.remaining += members;
      entry.removed += members;
    }
  }

  /// The batch's waiter and count if nothing more can join and every member
  /// has ended.
  fn done(&mut self, batch: u64) -> Option<(u32, usize)> {
    let entry = self.batches.get(&batch)?;
    if entry.open || entry.remaining > 0 {
      return None;
    }
    let done = self.batches.remove(&batch)?;
    Some((done.waiter, done.removed))
  }

  fn member_ended(&mut self, batch: u64) -> Option<(u32, usize)> {
    let entry = self.batches.get_mut(&batch)?;
    entry.remaining -= 1;
    self.done(batch)
  }

  pub fn bystander(&mut self, ticket: Ticket, waiter: u32) {
    self.bystanders.entry(ticket).or_default().push(waiter);
  }
}

impl NitySessionRegistry {
  /// A new pending promise and the waiter slot that settles it.
  pub(crate) fn new_promise(&self, env: &Env) -> Result<(u32, Value)> {
    let slot = self.closing.borrow_mut().reserve_waiter();
    match self.js.promise(env, slot) {
      Ok(promise) => Ok((slot, promise)),
      Err(e) => {
        self.closing.borrow_mut().free_waiters.push(slot);
        Err(e)
      }
    }
  }

  /// Settles the promise in a waiter slot and frees the slot. Never throws.
  fn resolve_waiter(&self, env: &Env, slot: u32, fulfilled: bool, value: Result<Value>) {
    let _ = value.and_then(|value| self.js.settle(env, slot, fulfilled, value));
    self.closing.borrow_mut().free_waiters.push(slot);
    js::clear_pending(env);
  }

  /// Starts one close now, for `unregister`.
  pub(crate) fn close_now(&self, env: &Env, this: Value, order: CloseOrder, waiter: u32) {
    let handle = self
      .js
      .take_handle(env, order.slot)
      .unwrap_or(ptr::null_mut());
    self
      .closing
      .borrow_mut()
      .primary
      .insert(order.ticket, Waiter::Caller(waiter));
    self.start(env, this, order.ticket, handle);
  }

  /// A promise for a bulk cleanup, settled once all its members have ended.
  /// An open batch takes members until [`Self::seal_batch`].
  pub(crate) fn new_batch(&self, env: &Env, open: bool) -> Result<(u64, Value)> {
    let (waiter, promise) = self.new_promise(env)?;
    let batch = self.closing.borrow_mut().batch(waiter, open);
    Ok((batch, promise))
  }

  /// Closes what a bulk cleanup removed, as members of `batch`. All handles
  /// leave their slots before any user code runs, because a `close()` that
  /// registers a new session may be handed one of those slots.
  pub(crate) fn close_later(&self, env: &Env, this: Value, orders: Vec<CloseOrder>, batch: u64) {
    self.closing.borrow_mut().join(batch, orders.len());
    let mut unparked = Vec::new();
    for order in orders {
      let handle = self
        .js
        .take_handle(env, order.slot)
        .unwrap_or(ptr::null_mut());
      let parking = self.closing.borrow_mut().reserve_parking();
      let parked = self.js.park(env, parking, handle).is_ok();
      let mut closing = self.closing.borrow_mut();
      closing.primary.insert(order.ticket, Waiter::Batch(batch));
      if parked {
        closing.queue.push_back((order.ticket, parking));
      } else {
        closing.free_parking.push(parking);
        unparked.push(order.ticket);
      }
    }
    // Nowhere to keep a handle: its close fails rather than hangs.
    for ticket in unparked {
      self.finish_close(env, ticket, CloseOutcome::Failed, None);
    }
    self.pump(env, this);
  }

  /// No more members join `batch`; settles it if they have all ended.
  pub(crate) fn seal_batch(&self, env: &Env, batch: u64) {
    let done = {
      let mut closing = self.closing.borrow_mut();
      if let Some(entry) = closing.batches.get_mut(&batch) {
        entry.open = false;
      }
      closing.done(batch)
    };
    if let Some((waiter, removed)) = done {
      self.resolve_waiter(env, waiter, true, js::number(env, removed as f64));
    }
  }

  /// Starts parked closes until the queue is empty or the slice is used up,
  /// then yields to the event loop and carries on from there.
  pub(crate) fn pump(&self, env: &Env, this: Value) {
    let started = Instant::now();
    let mut count = 0u32;
    loop {
      let next = self.closing.borrow_mut().queue.pop_front();
      let Some((ticket, parking)) = next else {
        return;
      };
      let handle = self.js.unpark(env, parking).unwrap_or(ptr::null_mut());
      self.closing.borrow_mut().free_parking.push(parking);
      self.start(env, this, ticket, handle);
      count += 1;
      if count.is_multiple_of(16) && started.elapsed() >= SLICE {
        break;
      }
    }
    let more = {
      let mut closing = self.closing.borrow_mut();
      let more = !closing.queue.is_empty() && !closing.pump_scheduled;
      closing.pump_scheduled |= more;
      more
    };
    if more && schedule(env, this, on_pump, 0).is_err() {
      // Without a way to yield, finish the work now rather than never.
      self.closing.borrow_mut().pump_scheduled = false;
      self.pump(env, this);
    }
  }

  fn start(&self, env: &Env, this: Value, ticket: Ticket, handle: Value) {
    if self.js.start_close(env, this, ticket, handle).is_err() {
      js::clear_pending(env);
      let error = js::error(
        env,
        false,
        "ERR_CLOSE_FAILED",
        "the close could not be started",
      )
      .ok();
      self.finish_close(env, ticket, CloseOutcome::Failed, error);
    }
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
    let (primary, bystanders) = {
      let mut closing = self.closing.borrow_mut();
      (
        closing.primary.remove(&ticket),
        closing.bystanders.remove(&ticket),
      )
    };
    match primary {
      Some(Waiter::Caller(slot)) => match outcome {
        CloseOutcome::Failed => {
          let reason = error.map_or_else(|| js::undefined(env), Ok);
          self.resolve_waiter(env, slot, false, reason);
        }
        CloseOutcome::Closed => self.resolve_waiter(env, slot, true, js::undefined(env)),
      },
      Some(Waiter::Batch(batch)) => {
        let done = self.closing.borrow_mut().member_ended(batch);
        if let Some((slot, removed)) = done {
          self.resolve_waiter(env, slot, true, js::number(env, removed as f64));
        }
      }
      None => {}
    }
    for slot in bystanders.into_iter().flatten() {
      self.resolve_waiter(env, slot, true, js::undefined(env));
    }
  }
}

/// `setImmediate(callback.bind(this))`, the callback a native function
/// carrying `tag`.
pub fn schedule(
  env: &Env,
  this: Value,
  callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value,
  tag: usize,
) -> Result<()> {
  let function = js::function_with_tag(env, "nityRegistryContinue", callback, tag)?;
  let bound = js::bind(env, function, this)?;
  let set_immediate = js::get(env, js::global(env)?, c"setImmediate")?;
  match js::call(env, js::undefined(env)?, set_immediate, &[bound])? {
    Ok(_) => Ok(()),
    Err(_) => Err(napi::Error::new(
      napi::Status::GenericFailure,
      "setImmediate failed".to_owned(),
    )),
  }
}

/// The registry a bound callback was called on.
///
/// # Safety
/// `this` must come from the running callback's info.
pub unsafe fn registry_of<'a>(
  env: sys::napi_env,
  this: Value,
) -> Result<ClassInstance<'a, NitySessionRegistry>> {
  unsafe { ClassInstance::<NitySessionRegistry>::from_napi_value(env, this) }
}

/// The next slice of the close queue.
unsafe extern "C" fn on_pump(raw_env: sys::napi_env, info: sys::napi_callback_info) -> Value {
  let env = Env::from_raw(raw_env);
  let _ = (|| -> Result<()> {
    let info = unsafe { js::callback_info(&env, info) }?;
    let registry = unsafe { registry_of(raw_env, info.this) }?;
    registry.closing.borrow_mut().pump_scheduled = false;
    registry.pump(&env, info.this);
    Ok(())
  })();
  js::clear_pending(&env);
  ptr::null_mut()
}

/// The registry's `settled(ticket, fulfilled, value)`, called by the
/// script's `start` with `this` the registry. Must never throw.
pub unsafe extern "C" fn on_settled(
  raw_env: sys::napi_env,
  info: sys::napi_callback_info,
) -> Value {
  let env = Env::from_raw(raw_env);
  let _ = (|| -> Result<()> {
    let info = unsafe { js::callback_info(&env, info) }?;
    let registry = unsafe { registry_of(raw_env, info.this) }?;
    let ticket = js::to_f64(&env, info.args[0])? as Ticket;
    if js::to_bool(&env, info.args[1])? {
      registry.finish_close(&env, ticket, CloseOutcome::Closed, None);
    } else {
      registry.finish_close(&env, ticket, CloseOutcome::Failed, Some(info.args[2]));
    }
    Ok(())
  })();
  js::clear_pending(&env);
  ptr::null_mut()
}

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

use std::collections::VecDeque;

use hashbrown::HashMap;
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

/// Closes started per call into the script, between looks at the clock.
const BURST: usize = 32;

/// Who is waiting for a close to end. Promises are named by their waiter
/// slot in the registry's JavaScript state.
#[derive(Clone, Copy)]
pub enum Waiter {
  /// The `unregister` that closed the session: rejects with the handle's error.
  Caller(u32),
  /// One session of a bulk cleanup.
  Batch(u64),
}

/// What happens when a batch's last member has ended.
#[derive(Clone, Copy)]
pub enum BatchDone {
  /// Resolve the promise in this waiter slot with the count.
  Promise(u32),
  /// Arm the next automatic cleanup of this generation.
  AutoCleanup(u32),
  /// Nothing waits (closes made to evict).
  Nothing,
}

struct Batch {
  /// Members whose close has not ended.
  remaining: usize,
  /// Members so far: the count the promise resolves with.
  removed: usize,
  /// Whether more members may still join (a stale scan in progress).
  open: bool,
  done: BatchDone,
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
  /// Tickets of the closes not started yet, in queue order; the front one's
  /// handle is at position `queue_head` of the JavaScript queue.
  queue: VecDeque<Ticket>,
  queue_head: usize,
  /// Pumps running right now (a `close()` may start a nested cleanup).
  pumping: u32,
  pump_scheduled: bool,
  /// When the current slice of bulk work began.
  slice: Option<Instant>,
  /// Recent cost of ending a close, in seconds. Closes that settle at once
  /// end in the same turn of the event loop as their slice, so a slice
  /// budgets for their endings too.
  end_cost: f64,
}

impl Closing {
  fn reserve_waiter(&mut self) -> u32 {
    self.free_waiters.pop().unwrap_or_else(|| {
      self.next_waiter += 1;
      self.next_waiter - 1
    })
  }

  /// Opens a batch; `open` batches take more members until sealed.
  pub fn batch(&mut self, done: BatchDone, open: bool) -> u64 {
    self.next_batch += 1;
    self.batches.insert(
      self.next_batch,
      Batch {
        remaining: 0,
        removed: 0,
        open,
        done,
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

  /// What to do and the count, if nothing more can join the batch and
  /// every member has ended.
  fn done(&mut self, batch: u64) -> Option<(BatchDone, usize)> {
    let entry = self.batches.get(&batch)?;
    if entry.open || entry.remaining > 0 {
      return None;
    }
    let done = self.batches.remove(&batch)?;
    Some((done.done, done.removed))
  }

  fn member_ended(&mut self, batch: u64) -> Option<(BatchDone, usize)> {
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

  /// Starts one close now, for `unregister`, and returns its promise.
  pub(crate) fn close_now(&self, env: &Env, this: Value, order: CloseOrder) -> Result<Value> {
    let waiter = {
      let mut closing = self.closing.borrow_mut();
      let waiter = closing.reserve_waiter();
      closing.primary.insert(order.ticket, Waiter::Caller(waiter));
      waiter
    };
    let now = self.now(env);
    self.core.borrow_mut().start_close(order.ticket, now);
    match self
      .js
      .close_one(env, this, order.slot, waiter, order.ticket)
    {
      Ok(promise) => {
        self.watch_deadlines(env, this, &[order.ticket]);
        Ok(promise)
      }
      Err(e) => {
        // The session is out of the registry; its close is lost with the
        // error, which the caller sees.
        let mut closing = self.closing.borrow_mut();
        closing.primary.remove(&order.ticket);
        closing.free_waiters.push(waiter);
        drop(closing);
        let now = self.now(env);
        self
          .core
          .borrow_mut()
          .settle(order.ticket, CloseOutcome::Failed, now);
        Err(e)
      }
    }
  }

  /// A promise for a bulk cleanup, settled once all its members have ended.
  /// An open batch takes members until [`Self::seal_batch`].
  pub(crate) fn new_batch(&self, env: &Env, open: bool) -> Result<(u64, Value)> {
    let (waiter, promise) = self.new_promise(env)?;
    let batch = self
      .closing
      .borrow_mut()
      .batch(BatchDone::Promise(waiter), open);
    Ok((batch, promise))
  }

  /// A batch nobody awaits.
  pub(crate) fn quiet_batch(&self, done: BatchDone, open: bool) -> u64 {
    self.closing.borrow_mut().batch(done, open)
  }

  /// Acts on a batch that has ended.
  fn batch_done(&self, env: &Env, this: Value, done: BatchDone, removed: usize) {
    match done {
      BatchDone::Promise(slot) => {
        self.resolve_waiter(env, slot, true, js::number(env, removed as f64))
      }
      BatchDone::AutoCleanup(generation) => self.auto_cleanup_done(env, this, generation),
      BatchDone::Nothing => {}
    }
  }

  /// Closes what a bulk cleanup removed, as members of `batch`. All handles
  /// leave their slots before any user code runs, because a `close()` that
  /// registers a new session may be handed one of those slots.
  /// `since` is when the calling slice of work began; the first burst of
  /// closes only gets what is left of that slice.
  pub(crate) fn close_later(
    &self,
    env: &Env,
    this: Value,
    orders: Vec<CloseOrder>,
    batch: u64,
    since: Instant,
  ) {
    self.enqueue(env, this, orders, batch);
    self.pump(env, this, since);
  }

  /// Moves the handles of `orders` into the close queue as members of
  /// `batch`, without starting anything: no user code runs.
  pub(crate) fn enqueue(&self, env: &Env, this: Value, orders: Vec<CloseOrder>, batch: u64) {
    let slots: Vec<u32> = orders.iter().map(|order| order.slot).collect();
    let tickets: Vec<f64> = orders.iter().map(|order| order.ticket as f64).collect();
    {
      let mut closing = self.closing.borrow_mut();
      closing.join(batch, orders.len());
      for order in &orders {
        closing.primary.insert(order.ticket, Waiter::Batch(batch));
      }
    }
    if self.js.park(env, &slots, &tickets).is_err() {
      // Nowhere to keep the handles: their closes fail rather than hang.
      js::clear_pending(env);
      for order in orders {
        self.finish_close(env, this, order.ticket, CloseOutcome::Failed, None);
      }
      return;
    }
    self
      .closing
      .borrow_mut()
      .queue
      .extend(orders.iter().map(|order| order.ticket));
  }

  /// No more members join `batch`; settles it if they have all ended.
  pub(crate) fn seal_batch(&self, env: &Env, this: Value, batch: u64) {
    let done = {
      let mut closing = self.closing.borrow_mut();
      if let Some(entry) = closing.batches.get_mut(&batch) {
        entry.open = false;
      }
      closing.done(batch)
    };
    if let Some((done, removed)) = done {
      self.batch_done(env, this, done, removed);
    }
  }

  /// Starts queued closes in bursts, no more running at once than the
  /// policy allows, until the queue is empty or the slice that began at
  /// `started` is used up; then yields to the event loop and carries on from
  /// there (or, when at the limit, when a close ends). A `close()` that
  /// queues more closes (a nested cleanup) leaves them to the pump already
  /// running.
  pub(crate) fn pump(&self, env: &Env, this: Value, started: Instant) {
    if self.closing.borrow().pumping > 0 {
      return;
    }
    {
      let mut closing = self.closing.borrow_mut();
      closing.pumping += 1;
      closing.slice = Some(started);
    }
    let mut count = 0usize;
    loop {
      let endings = count as f64 * self.closing.borrow().end_cost;
      let left = SLICE.as_secs_f64() - started.elapsed().as_secs_f64() - endings;
      let capacity = self.core.borrow().close_capacity();
      let (from, tickets) = {
        let mut closing = self.closing.borrow_mut();
        let burst = closing.queue.len().min(BURST).min(capacity);
        if burst == 0 || left <= 0.0 {
          break;
        }
        let from = closing.queue_head;
        closing.queue_head += burst;
        let tickets: Vec<Ticket> = closing.queue.drain(..burst).collect();
        (from, tickets)
      };
      let now = self.now(env);
      {
        let mut core = self.core.borrow_mut();
        for &ticket in &tickets {
          core.start_close(ticket, now);
        }
      }
      if self.js.start_many(env, this, from, tickets.len()).is_err() {
        js::clear_pending(env);
        // Whatever did not start fails rather than hangs; closes of the
        // burst that did start have reported already and are ignored.
        for &ticket in &tickets {
          let error = js::error(
            env,
            false,
            "ERR_CLOSE_FAILED",
            "the close could not be started",
          )
          .ok();
          self.finish_close(env, this, ticket, CloseOutcome::Failed, error);
        }
      }
      self.watch_deadlines(env, this, &tickets);
      count += tickets.len();
    }
    let capacity = self.core.borrow().close_capacity();
    let (empty, more) = {
      let mut closing = self.closing.borrow_mut();
      closing.pumping -= 1;
      let empty = closing.queue.is_empty() && closing.queue_head > 0;
      if empty {
        closing.queue_head = 0;
      }
      // At the concurrency limit, the next close to end pumps again.
      let more = !closing.queue.is_empty() && capacity > 0 && !closing.pump_scheduled;
      closing.pump_scheduled |= more;
      (empty, more)
    };
    if empty && self.js.empty_queue(env).is_err() {
      js::clear_pending(env);
    }
    if more && schedule(env, this, on_pump, 0).is_err() {
      // Without a way to yield, finish the work now rather than never.
      js::clear_pending(env);
      self.closing.borrow_mut().pump_scheduled = false;
      self.pump(env, this, Instant::now());
    }
  }

  /// Records the end of a close, tells the close hooks, and settles the
  /// promises waiting on it. Only the first call per ticket has any effect.
  /// Never throws.
  pub(crate) fn finish_close(
    &self,
    env: &Env,
    this: Value,
    ticket: Ticket,
    outcome: CloseOutcome,
    error: Option<Value>,
  ) {
    let started = Instant::now();
    let now = self.now(env);
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
        CloseOutcome::Failed | CloseOutcome::TimedOut => {
          let reason = error.map_or_else(|| js::undefined(env), Ok);
          self.resolve_waiter(env, slot, false, reason);
        }
        CloseOutcome::Closed => self.resolve_waiter(env, slot, true, js::undefined(env)),
      },
      Some(Waiter::Batch(batch)) => {
        let done = self.closing.borrow_mut().member_ended(batch);
        if let Some((done, removed)) = done {
          self.batch_done(env, this, done, removed);
        }
      }
      None => {}
    }
    for slot in bystanders.into_iter().flatten() {
      self.resolve_waiter(env, slot, true, js::undefined(env));
    }
    // Listener time is excluded from nothing: slow listeners make slices
    // start fewer closes, which is what keeps the event loop responsive.
    let took = started.elapsed().as_secs_f64();
    let queued = {
      let mut closing = self.closing.borrow_mut();
      closing.end_cost = 0.9 * closing.end_cost + 0.1 * took;
      !closing.queue.is_empty() && !closing.pump_scheduled
    };
    // A close ending frees room under the concurrency limit. The refill runs
    // once the promise jobs queued so far have run (closes that settle
    // together then refill in one burst): in the same turn while the slice
    // lasts, else in the next.
    if queued {
      let in_slice = self
        .closing
        .borrow()
        .slice
        .is_some_and(|slice| slice.elapsed() < SLICE);
      self.closing.borrow_mut().pump_scheduled = true;
      let scheduled = if in_slice {
        schedule_microtask(env, this, on_pump, 1)
      } else {
        schedule(env, this, on_pump, 0)
      };
      if scheduled.is_err() {
        js::clear_pending(env);
        self.closing.borrow_mut().pump_scheduled = false;
        self.pump(env, this, Instant::now());
      }
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
  defer(env, this, callback, tag, c"setImmediate")
}

/// `queueMicrotask(callback.bind(this))`: runs once the promise jobs queued
/// so far have run, in the same turn of the event loop.
pub fn schedule_microtask(
  env: &Env,
  this: Value,
  callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value,
  tag: usize,
) -> Result<()> {
  defer(env, this, callback, tag, c"queueMicrotask")
}

fn defer(
  env: &Env,
  this: Value,
  callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value,
  tag: usize,
  via: &std::ffi::CStr,
) -> Result<()> {
  let function = js::function_with_tag(env, "nityRegistryContinue", callback, tag)?;
  let bound = js::bind(env, function, this)?;
  let scheduler = js::get(env, js::global(env)?, via)?;
  match js::call(env, js::undefined(env)?, scheduler, &[bound])? {
    Ok(_) => Ok(()),
    Err(_) => Err(napi::Error::new(
      napi::Status::GenericFailure,
      "scheduling failed".to_owned(),
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
    // Tag 1: a refill in the same turn, still within the slice it began in.
    let started = match (info.tag, registry.closing.borrow().slice) {
      (1, Some(slice)) => slice,
      _ => Instant::now(),
    };
    registry.closing.borrow_mut().pump_scheduled = false;
    registry.pump(&env, info.this, started);
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
      registry.finish_close(&env, info.this, ticket, CloseOutcome::Closed, None);
    } else {
      registry.finish_close(
        &env,
        info.this,
        ticket,
        CloseOutcome::Failed,
        Some(info.args[2]),
      );
    }
    Ok(())
  })();
  js::clear_pending(&env);
  ptr::null_mut()
}

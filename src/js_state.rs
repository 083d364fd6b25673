//! Where a registry keeps its JavaScript values: the session handles, indexed
//! by the core's slots; handles waiting for their close to start; the close
//! listeners; the resolve and reject functions of its pending promises; the
//! mirror of sessions per client; and its script functions (`script.rs`).
//!
//! All of them hang off the registry object itself, under a hidden symbol
//! property, and the native side reaches them only through weak references.
//! So nothing the registry holds is a garbage-collection root: a handle that
//! points back at its registry, a listener that closes over it, or a promise
//! that is awaited by code using it, is collected together with a registry
//! that was dropped without cleanup.

use std::cell::RefCell;
use std::time::Duration;

use napi::{sys, Env, Error, Result, Status};

use crate::js::{self, Value, WeakRef};
use crate::script;
use nity_registry_core::{ClientChange, Slot};

/// Indexes in the hidden holder array.
const HANDLES: u32 = 0;
const LISTENERS: u32 = 1;
const WAITERS: u32 = 2;
const FUNCTIONS: u32 = 3;
const COUNTS: u32 = 4;
const QUEUE: u32 = 5;
const SETTLED: u32 = 6;
const SCRATCH: u32 = 7;
const CLOCK: u32 = 8;
const TIMERS: u32 = 9;

/// The registry's timers, by index in the timer array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
  AutoCleanup = 0,
  Deadlines = 1,
}

pub struct JsState {
  holder: WeakRef,
  handles: WeakRef,
  listeners: WeakRef,
  waiters: WeakRef,
  counts: WeakRef,
  queue: WeakRef,
  settled: WeakRef,
  /// The shared scratch array and its length; replaced when it must grow.
  scratch: RefCell<(WeakRef, usize)>,
  deferred_fn: WeakRef,
  settle_fn: WeakRef,
  pick_fn: WeakRef,
  health_fn: WeakRef,
  stats_fn: WeakRef,
  count_fn: WeakRef,
  park_fn: WeakRef,
  start_many_fn: WeakRef,
  empty_queue_fn: WeakRef,
  close_one_fn: WeakRef,
  first_idle_fn: WeakRef,
  timer_fn: WeakRef,
  cancel_fn: WeakRef,
  clock: WeakRef,
  timers: WeakRef,
  /// Whether the clock is the caller's (`now()` is then asked of it).
  pub injected_clock: bool,
}

impl JsState {
  /// Creates the arrays, compiles the script, and attaches everything to
  /// `this` for as long as it lives. `settled` is the registry's native
  /// close-settle callback.
  pub fn attach(env: &Env, this: Value, settled: Value, clock: Option<Value>) -> Result<Self> {
    let functions = js::run_script(env, script::SOURCE)?;
    let function = |name: &std::ffi::CStr| -> Result<WeakRef> {
      WeakRef::new(env, js::get(env, functions, name)?)
    };
    let counts_fn = js::get(env, functions, c"counts")?;
    let counts = call_script(env, counts_fn, &[])?;
    let scratch_len = 64;
    let (scratch, _) = js::uint32_array(env, scratch_len)?;
    let injected_clock = clock.is_some();
    let clock = match clock {
      Some(clock) => clock,
      None => call_script(env, js::get(env, functions, c"systemClock")?, &[])?,
    };
    let holder = js::array(env, 10)?;
    let parts = [
      (HANDLES, js::array(env, 0)?),
      (LISTENERS, js::array(env, 0)?),
      (WAITERS, js::array(env, 0)?),
      (FUNCTIONS, functions),
      (COUNTS, counts),
      (QUEUE, js::array(env, 0)?),
      (SETTLED, settled),
      (SCRATCH, scratch),
      (CLOCK, clock),
      (TIMERS, js::array(env, 2)?),
    ];
    for (index, value) in parts {
      js::set_element(env, holder, index, value)?;
    }
    let key = js::symbol(env, "nity-session-registry.state")?;
    js::define_hidden(env, this, key, holder)?;
    let part =
      |index: u32| -> Result<WeakRef> { WeakRef::new(env, js::get_element(env, holder, index)?) };
    Ok(JsState {
      holder: WeakRef::new(env, holder)?,
      handles: part(HANDLES)?,
      listeners: part(LISTENERS)?,
      waiters: part(WAITERS)?,
      counts: part(COUNTS)?,
      queue: part(QUEUE)?,
      settled: part(SETTLED)?,
      scratch: RefCell::new((part(SCRATCH)?, scratch_len)),
      deferred_fn: function(c"deferred")?,
      settle_fn: function(c"settle")?,
      pick_fn: function(c"pick")?,
      health_fn: function(c"health")?,
      stats_fn: function(c"stats")?,
      count_fn: function(c"count")?,
      park_fn: function(c"park")?,
      start_many_fn: function(c"startMany")?,
      empty_queue_fn: function(c"emptyQueue")?,
      close_one_fn: function(c"closeOne")?,
      first_idle_fn: function(c"firstIdle")?,
      timer_fn: function(c"timer")?,
      cancel_fn: function(c"cancel")?,
      clock: part(CLOCK)?,
      timers: part(TIMERS)?,
      injected_clock,
    })
  }

  /// Releases the weak references; the values go with the registry object.
  pub fn release(self, env: &Env) {
    for reference in [
      self.holder,
      self.handles,
      self.listeners,
      self.waiters,
      self.counts,
      self.queue,
      self.settled,
      self.scratch.into_inner().0,
      self.deferred_fn,
      self.settle_fn,
      self.pick_fn,
      self.health_fn,
      self.stats_fn,
      self.count_fn,
      self.park_fn,
      self.start_many_fn,
      self.empty_queue_fn,
      self.close_one_fn,
      self.first_idle_fn,
      self.timer_fn,
      self.cancel_fn,
      self.clock,
      self.timers,
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

  /// Moves the handles in `slots` to the end of the close queue, each with
  /// its ticket, in one call.
  pub fn park(&self, env: &Env, slots: &[Slot], tickets: &[f64]) -> Result<()> {
    let (slot_array, _) = js::uint32_array(env, slots.len())?;
    js::write_uint32s(env, slot_array, slots)?;
    let args = [
      self.handles(env)?,
      live(self.queue.get(env)?)?,
      slot_array,
      js::float64_array(env, tickets)?,
      js::number(env, slots.len() as f64)?,
    ];
    call_script(env, live(self.park_fn.get(env)?)?, &args).map(drop)
  }

  /// Starts the closes queued at positions `from..from + count`. Their
  /// outcomes arrive at the registry's `settled` callback.
  pub fn start_many(&self, env: &Env, this: Value, from: usize, count: usize) -> Result<()> {
    let args = [
      live(self.queue.get(env)?)?,
      js::number(env, from as f64)?,
      js::number(env, count as f64)?,
      this,
      live(self.settled.get(env)?)?,
    ];
    call_script(env, live(self.start_many_fn.get(env)?)?, &args).map(drop)
  }

  /// Empties the close queue once every queued close has started.
  pub fn empty_queue(&self, env: &Env) -> Result<()> {
    let args = [live(self.queue.get(env)?)?];
    call_script(env, live(self.empty_queue_fn.get(env)?)?, &args).map(drop)
  }

  /// A new pending promise whose settle functions are kept in waiter slot `waiter`.
  pub fn promise(&self, env: &Env, waiter: u32) -> Result<Value> {
    let args = [
      live(self.waiters.get(env)?)?,
      js::number(env, f64::from(waiter))?,
    ];
    call_script(env, live(self.deferred_fn.get(env)?)?, &args)
  }

  /// Settles the promise in waiter slot `waiter` and empties the slot.
  pub fn settle(&self, env: &Env, waiter: u32, fulfilled: bool, value: Value) -> Result<()> {
    let args = [
      live(self.waiters.get(env)?)?,
      js::number(env, f64::from(waiter))?,
      js::boolean(env, fulfilled)?,
      value,
    ];
    call_script(env, live(self.settle_fn.get(env)?)?, &args).map(drop)
  }

  /// Takes the handle out of `slot`, makes a promise kept in waiter slot
  /// `waiter`, and starts the close, in one call; returns the promise.
  pub fn close_one(
    &self,
    env: &Env,
    this: Value,
    slot: Slot,
    waiter: u32,
    ticket: u64,
  ) -> Result<Value> {
    let args = [
      self.handles(env)?,
      js::number(env, f64::from(slot))?,
      live(self.waiters.get(env)?)?,
      js::number(env, f64::from(waiter))?,
      js::number(env, ticket as f64)?,
      this,
      live(self.settled.get(env)?)?,
    ];
    call_script(env, live(self.close_one_fn.get(env)?)?, &args)
  }

  /// The handles in `slots`, as a new array.
  pub fn pick(&self, env: &Env, slots: &[Slot]) -> Result<Value> {
    let scratch = self.scratch_for(env, slots.len())?;
    js::write_uint32s(env, scratch, slots)?;
    let args = [
      self.handles(env)?,
      scratch,
      js::number(env, slots.len() as f64)?,
    ];
    call_script(env, live(self.pick_fn.get(env)?)?, &args)
  }

  /// Health codes of the sessions in `slots`, one per slot asked (see
  /// `script.rs`), and for those flagged in `idle`, whether they are running
  /// (1) or not (2); stops early once `budget` is spent. Runs user code that
  /// may call back into the registry, so it uses buffers of its own.
  pub fn health(
    &self,
    env: &Env,
    slots: &[Slot],
    idle: &[u32],
    budget: Duration,
  ) -> Result<(Vec<u32>, Vec<u32>)> {
    let (buffer, _) = js::uint32_array(env, slots.len())?;
    js::write_uint32s(env, buffer, slots)?;
    let (idle_buffer, _) = js::uint32_array(env, idle.len())?;
    js::write_uint32s(env, idle_buffer, idle)?;
    let args = [
      self.handles(env)?,
      buffer,
      js::number(env, slots.len() as f64)?,
      js::number(env, budget.as_secs_f64() * 1000.0)?,
      idle_buffer,
    ];
    let asked = call_script(env, live(self.health_fn.get(env)?)?, &args)?;
    let asked = (js::to_f64(env, asked)? as usize).min(slots.len());
    Ok((
      js::read_uint32s(env, buffer, asked)?,
      js::read_uint32s(env, idle_buffer, asked)?,
    ))
  }

  /// The index of the first session in `slots` that says it is not running.
  pub fn first_idle(&self, env: &Env, slots: &[Slot]) -> Result<Option<usize>> {
    let scratch = self.scratch_for(env, slots.len())?;
    js::write_uint32s(env, scratch, slots)?;
    let args = [
      self.handles(env)?,
      scratch,
      js::number(env, slots.len() as f64)?,
    ];
    let found = call_script(env, live(self.first_idle_fn.get(env)?)?, &args)?;
    let found = js::to_f64(env, found)?;
    Ok((found >= 0.0).then_some(found as usize))
  }

  /// `clock.now()` of an injected clock; `None` when it throws or answers
  /// something other than a finite number.
  pub fn clock_now(&self, env: &Env) -> Option<f64> {
    let now = (|| -> Result<Option<f64>> {
      let clock = live(self.clock.get(env)?)?;
      let now_fn = js::get(env, clock, c"now")?;
      match js::call(env, clock, now_fn, &[])? {
        Ok(value) if js::type_of(env, value)? == js::Type::Number => {
          Ok(Some(js::to_f64(env, value)?).filter(|n| n.is_finite()))
        }
        _ => Ok(None),
      }
    })();
    js::clear_pending(env);
    now.ok().flatten()
  }

  /// Arms a timer of `kind` to call `native` with `this` the registry after
  /// `ms`, replacing one already armed.
  pub fn arm(
    &self,
    env: &Env,
    this: Value,
    kind: TimerKind,
    ms: f64,
    native: Value,
    tag: u32,
  ) -> Result<()> {
    self.disarm(env, kind)?;
    let args = [
      live(self.clock.get(env)?)?,
      js::number(env, ms.max(0.0))?,
      this,
      native,
      js::number(env, f64::from(tag))?,
    ];
    let handle = call_script(env, live(self.timer_fn.get(env)?)?, &args)?;
    js::set_element(env, live(self.timers.get(env)?)?, kind as u32, handle)
  }

  /// Cancels the timer of `kind`, if armed.
  pub fn disarm(&self, env: &Env, kind: TimerKind) -> Result<()> {
    let timers = live(self.timers.get(env)?)?;
    let handle = js::get_element(env, timers, kind as u32)?;
    if js::type_of(env, handle)? == js::Type::Undefined {
      return Ok(());
    }
    js::set_element(env, timers, kind as u32, js::undefined(env)?)?;
    let args = [live(self.clock.get(env)?)?, handle];
    call_script(env, live(self.cancel_fn.get(env)?)?, &args).map(drop)
  }

  /// Brings the per-client counts mirror up to date. Its keys stay in order
  /// of client arrival: a client that left and came back moves to the end.
  pub fn update_counts(&self, env: &Env, changes: &[ClientChange]) -> Result<()> {
    if changes.is_empty() {
      return Ok(());
    }
    let counts = live(self.counts.get(env)?)?;
    let count_fn = live(self.count_fn.get(env)?)?;
    for change in changes {
      let args = [
        counts,
        js::string(env, &change.client_id)?,
        js::number(env, change.count as f64)?,
        js::boolean(env, change.recreated)?,
      ];
      call_script(env, count_fn, &args)?;
    }
    Ok(())
  }

  /// `{ totalSessions, activeClients, sessionsByClient }` from the mirror.
  pub fn stats(&self, env: &Env, total: usize, clients: usize) -> Result<Value> {
    let args = [
      js::number(env, total as f64)?,
      js::number(env, clients as f64)?,
      live(self.counts.get(env)?)?,
    ];
    call_script(env, live(self.stats_fn.get(env)?)?, &args)
  }

  /// The shared scratch array, grown to hold at least `len` numbers. Only
  /// for script functions that run no user code.
  fn scratch_for(&self, env: &Env, len: usize) -> Result<Value> {
    let mut scratch = self.scratch.borrow_mut();
    if len <= scratch.1 {
      return live(scratch.0.get(env)?);
    }
    let grown = len.next_power_of_two();
    let (array, _) = js::uint32_array(env, grown)?;
    js::set_element(env, live(self.holder.get(env)?)?, SCRATCH, array)?;
    let old = std::mem::replace(&mut *scratch, (WeakRef::new(env, array)?, grown));
    old.0.delete(env);
    Ok(array)
  }
}

/// Calls one of the script's functions, which never throw for valid arguments.
fn call_script(env: &Env, function: Value, args: &[Value]) -> Result<Value> {
  match js::call(env, js::undefined(env)?, function, args)? {
    Ok(value) => Ok(value),
    Err(thrown) => {
      js::check(unsafe { sys::napi_throw(env.raw(), thrown) })?;
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

//! Time-driven policies: the registry's clock, the automatic stale cleanup,
//! and the close deadline.
//!
//! Both run on timers of the registry's clock (`options.clock`, or the
//! system's), armed through the script so that a timer holds its registry
//! only weakly and never keeps the process alive. The automatic cleanup arms
//! its next run only when the previous one has finished, so runs never
//! overlap. Close deadlines share one timer, armed for the earliest.

use std::collections::VecDeque;
use std::ptr;
use std::time::Instant;

use napi::{sys, Env, Result};

use crate::closing::registry_of;
use crate::js::{self, Value};
use crate::js_state::TimerKind;
use crate::registry::NitySessionRegistry;
use nity_registry_core::{CloseOutcome, Ticket};

/// Where a registry's sense of time comes from.
pub struct TimeSource {
  /// The system clock's reading when the registry was made, in epoch ms.
  epoch_ms: f64,
  started: Instant,
}

impl TimeSource {
  pub fn new() -> Self {
    let epoch_ms = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    TimeSource {
      epoch_ms,
      started: Instant::now(),
    }
  }

  /// Epoch milliseconds that never go backwards.
  pub fn system_now(&self) -> f64 {
    self.epoch_ms + self.started.elapsed().as_secs_f64() * 1000.0
  }
}

#[derive(Default)]
pub struct AutoCleanup {
  /// The interval while running; `None` when stopped.
  interval_ms: Option<f64>,
  /// Bumped by every start and stop, so a timer or scan of an older run
  /// recognises it is no longer wanted.
  generation: u32,
}

#[derive(Default)]
pub struct Deadlines {
  /// Closes started, with the time each must have settled by, in start order
  /// (the same deadline for all, so this is also deadline order).
  due: VecDeque<(f64, Ticket)>,
  /// The deadline the timer is armed for.
  armed_for: Option<f64>,
}

impl NitySessionRegistry {
  /// Now, on the registry's clock.
  pub(crate) fn now(&self, env: &Env) -> f64 {
    if self.js.injected_clock {
      if let Some(now) = self.js.clock_now(env) {
        return now;
      }
    }
    self.time.system_now()
  }

  /// Starts (or restarts with a new interval) the automatic stale cleanup.
  pub(crate) fn begin_auto_cleanup(&self, env: &Env, this: Value, interval_ms: f64) -> Result<()> {
    let generation = {
      let mut auto = self.auto.borrow_mut();
      auto.interval_ms = Some(interval_ms);
      auto.generation = auto.generation.wrapping_add(1);
      auto.generation
    };
    self.arm_auto_cleanup(env, this, generation)
  }

  /// Stops the automatic stale cleanup; a run in progress finishes but
  /// schedules no other. Idempotent.
  pub(crate) fn end_auto_cleanup(&self, env: &Env) -> Result<()> {
    {
      let mut auto = self.auto.borrow_mut();
      auto.interval_ms = None;
      auto.generation = auto.generation.wrapping_add(1);
    }
    self.js.disarm(env, TimerKind::AutoCleanup)
  }

  pub(crate) fn auto_cleanup_interval(&self) -> Option<f64> {
    self.auto.borrow().interval_ms
  }

  fn arm_auto_cleanup(&self, env: &Env, this: Value, generation: u32) -> Result<()> {
    let Some(interval) = self.auto.borrow().interval_ms else {
      return Ok(());
    };
    let native = js::function_with_tag(env, "autoCleanup", on_timer, 0)?;
    self.js.arm(
      env,
      this,
      TimerKind::AutoCleanup,
      interval,
      native,
      generation << 1,
    )
  }

  /// A stale scan started by the timer has finished: arm the next run.
  pub(crate) fn auto_cleanup_done(&self, env: &Env, this: Value, generation: u32) {
    if self.auto.borrow().generation == generation
      && self.arm_auto_cleanup(env, this, generation).is_err()
    {
      js::clear_pending(env);
    }
  }

  fn auto_cleanup_tick(&self, env: &Env, this: Value, generation: u32) {
    if self.auto.borrow().generation != generation || self.auto.borrow().interval_ms.is_none() {
      return;
    }
    if self.start_auto_scan(env, this, generation).is_err() {
      js::clear_pending(env);
      self.auto_cleanup_done(env, this, generation);
    }
  }

  /// Gives started closes until the deadline to settle.
  pub(crate) fn watch_deadlines(&self, env: &Env, this: Value, tickets: &[Ticket]) {
    let pending: Vec<Ticket> = {
      let core = self.core.borrow();
      tickets
        .iter()
        .copied()
        .filter(|&t| core.is_closing(t))
        .collect()
    };
    if pending.is_empty() {
      return;
    }
    let deadline = self.now(env) + self.close_timeout_ms;
    self
      .deadlines
      .borrow_mut()
      .due
      .extend(pending.into_iter().map(|ticket| (deadline, ticket)));
    self.arm_deadlines(env, this);
  }

  /// Arms the deadline timer for the earliest close still in flight.
  fn arm_deadlines(&self, env: &Env, this: Value) {
    let earliest = {
      let core = self.core.borrow();
      let mut deadlines = self.deadlines.borrow_mut();
      while deadlines
        .due
        .front()
        .is_some_and(|&(_, t)| !core.is_closing(t))
      {
        deadlines.due.pop_front();
      }
      // Deadlines only grow (now + the same timeout), so an armed timer is
      // never late for a newer close; closes that settled before their
      // deadline are skipped when it fires. Re-arming per close would cost
      // two timer calls each.
      if deadlines.armed_for.is_some() {
        return;
      }
      let earliest = deadlines.due.front().map(|&(due, _)| due);
      deadlines.armed_for = earliest;
      earliest
    };
    let Some(due) = earliest else {
      return;
    };
    let ms = due - self.now(env);
    let result = js::function_with_tag(env, "closeDeadline", on_timer, 1)
      .and_then(|native| self.js.arm(env, this, TimerKind::Deadlines, ms, native, 1));
    if result.is_err() {
      js::clear_pending(env);
    }
  }

  /// Gives up on every close past its deadline.
  fn sweep_deadlines(&self, env: &Env, this: Value) {
    self.deadlines.borrow_mut().armed_for = None;
    let now = self.now(env);
    loop {
      let next = {
        let mut deadlines = self.deadlines.borrow_mut();
        match deadlines.due.front() {
          Some(&(due, ticket)) if due <= now => {
            deadlines.due.pop_front();
            Some(ticket)
          }
          _ => None,
        }
      };
      let Some(ticket) = next else {
        break;
      };
      if self.core.borrow().is_closing(ticket) {
        let message = format!(
          "the session's close() did not settle within {} ms; the registry gave up on it",
          self.close_timeout_ms
        );
        let error = js::error(env, false, "ERR_CLOSE_TIMEOUT", &message).ok();
        self.finish_close(env, this, ticket, CloseOutcome::TimedOut, error);
      }
    }
    self.arm_deadlines(env, this);
  }
}

impl Default for TimeSource {
  fn default() -> Self {
    Self::new()
  }
}

/// Fired by a registry timer; the tag says which (bit 0: deadlines; else
/// the automatic cleanup, with its generation in the other bits).
unsafe extern "C" fn on_timer(raw_env: sys::napi_env, info: sys::napi_callback_info) -> Value {
  let env = Env::from_raw(raw_env);
  let _ = (|| -> Result<()> {
    let info = unsafe { js::callback_info(&env, info) }?;
    let registry = unsafe { registry_of(raw_env, info.this) }?;
    let tag = js::to_f64(&env, info.args[0])? as u32;
    if tag & 1 == 1 {
      registry.sweep_deadlines(&env, info.this);
    } else {
      registry.auto_cleanup_tick(&env, info.this, tag >> 1);
    }
    Ok(())
  })();
  js::clear_pending(&env);
  ptr::null_mut()
}

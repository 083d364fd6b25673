//! `cleanupStale()` as a job that asks sessions for their health in chunks,
//! a few milliseconds of work at a time, yielding to the event loop between
//! chunks so that scanning a hundred thousand sessions never stalls it.
//!
//! The job works from a snapshot of `(slot, seq)` registrations. A session's
//! `getHealth()` may register, unregister or replace sessions; anything no
//! longer registered as seen is skipped, and the core removes a stale session
//! only if it is still the registration that was judged.

use std::collections::HashMap;
use std::ptr;
use std::time::{Duration, Instant};

use napi::{sys, Env, Result};

use crate::closing::{registry_of, schedule, BatchDone, SLICE};
use crate::js::{self, Value};
use crate::registry::NitySessionRegistry;
use nity_registry_core::{HealthReading, HealthState, Slot};

/// Sessions asked per chunk at first; adapted to the measured cost.
const FIRST_CHUNK: usize = 64;
const MAX_CHUNK: usize = 16_384;

struct Scan {
  registrations: Vec<(Slot, u64)>,
  position: usize,
  chunk: usize,
  batch: u64,
}

/// The stale scans in progress.
#[derive(Default)]
pub struct StaleScans {
  scans: HashMap<u64, Scan>,
  next: u64,
}

/// What the script's `health` reported for one session.
fn decode_health(code: u32) -> HealthReading {
  match code {
    0 => HealthReading::Unavailable,
    1 => HealthReading::Failed,
    code => {
      let code = code - 2;
      let state = match code >> 1 {
        0 => HealthState::Idle,
        1 => HealthState::Active,
        2 => HealthState::Completed,
        3 => HealthState::Error,
        _ => HealthState::Unknown,
      };
      HealthReading::Reported {
        state,
        timed_out: code & 1 == 1,
      }
    }
  }
}

impl NitySessionRegistry {
  /// Starts a stale scan; the promise resolves with the number removed once
  /// the scan is done and every close it started has ended.
  pub(crate) fn start_stale_scan(&self, env: &Env, this: Value) -> Result<Value> {
    let (batch, promise) = self.new_batch(env, true)?;
    self.begin_scan(env, this, batch);
    Ok(promise)
  }

  /// Starts the automatic cleanup's scan of `generation`; its end arms the
  /// next run.
  pub(crate) fn start_auto_scan(&self, env: &Env, this: Value, generation: u32) -> Result<()> {
    let batch = self.quiet_batch(BatchDone::AutoCleanup(generation), true);
    self.begin_scan(env, this, batch);
    Ok(())
  }

  fn begin_scan(&self, env: &Env, this: Value, batch: u64) {
    let registrations = self.core.borrow().registrations();
    let id = {
      let mut scans = self.scans.borrow_mut();
      scans.next += 1;
      let id = scans.next;
      scans.scans.insert(
        id,
        Scan {
          registrations,
          position: 0,
          chunk: FIRST_CHUNK,
          batch,
        },
      );
      id
    };
    self.continue_scan(env, this, id);
  }

  /// Runs chunks until the scan ends or the slice is used up. Never throws.
  fn continue_scan(&self, env: &Env, this: Value, id: u64) {
    let started = Instant::now();
    loop {
      let Some(chunk) = self.next_chunk(id) else {
        return;
      };
      let chunk_started = Instant::now();
      let budget = SLICE.saturating_sub(started.elapsed());
      let now = self.now(env);
      // Sessions past the idle timeout are also asked whether they run.
      let idle: Vec<u32> = {
        let core = self.core.borrow();
        chunk
          .slots
          .iter()
          .map(|&slot| u32::from(core.idle_expired(slot, now)))
          .collect()
      };
      // A failure to ask at all (not a getHealth that throws) leaves these
      // sessions alone rather than closing healthy ones.
      let (codes, running) = self
        .js
        .health(env, &chunk.slots, &idle, budget)
        .unwrap_or_else(|_| {
          js::clear_pending(env);
          (vec![0; chunk.slots.len()], vec![0; chunk.slots.len()])
        });
      let asked = codes.len();
      let orders: Vec<_> = {
        let mut core = self.core.borrow_mut();
        let mut orders = Vec::new();
        for (i, code) in codes.into_iter().enumerate() {
          let running = match running[i] {
            1 => Some(true),
            2 => Some(false),
            _ => None,
          };
          let Some(reason) = decode_health(code).close_reason(running) else {
            continue;
          };
          if let Some(order) = core.close_registration(chunk.slots[i], chunk.seqs[i], reason, now) {
            orders.push(order);
          }
        }
        orders
      };
      if !orders.is_empty() {
        self.close_later(env, this, orders, chunk.batch, started);
      }
      let finished = self.advance(id, &chunk, asked, chunk_started.elapsed());
      if finished {
        self.scans.borrow_mut().scans.remove(&id);
        self.seal_batch(env, this, chunk.batch);
        return;
      }
      if started.elapsed() >= SLICE {
        if schedule(env, this, on_continue, id as usize).is_err() {
          js::clear_pending(env);
          continue;
        }
        return;
      }
    }
  }

  /// The next chunk of registrations still current.
  fn next_chunk(&self, id: u64) -> Option<Chunk> {
    let scans = self.scans.borrow();
    let scan = scans.scans.get(&id)?;
    let core = self.core.borrow();
    let end = (scan.position + scan.chunk).min(scan.registrations.len());
    let mut chunk = Chunk {
      slots: Vec::new(),
      seqs: Vec::new(),
      positions: Vec::new(),
      end,
      batch: scan.batch,
    };
    for (position, &(slot, seq)) in scan.registrations[scan.position..end].iter().enumerate() {
      if core.is_registered(slot, seq) {
        chunk.slots.push(slot);
        chunk.seqs.push(seq);
        chunk.positions.push(scan.position + position);
      }
    }
    Some(chunk)
  }

  /// Moves past what was asked (a chunk cut short by its time budget resumes
  /// where it stopped) and sizes the next chunk to fill about half a slice.
  /// Reports whether the scan has seen every registration.
  fn advance(&self, id: u64, chunk: &Chunk, asked: usize, took: Duration) -> bool {
    let mut scans = self.scans.borrow_mut();
    let Some(scan) = scans.scans.get_mut(&id) else {
      return true;
    };
    scan.position = chunk.positions.get(asked).copied().unwrap_or(chunk.end);
    if asked > 0 {
      let per_session = took.as_secs_f64() / asked as f64;
      let fits = (SLICE.as_secs_f64() / 2.0 / per_session.max(1e-9)) as usize;
      scan.chunk = fits.clamp(16, MAX_CHUNK);
    }
    scan.position >= scan.registrations.len()
  }
}

/// Registrations to ask about in one call, and where in the snapshot they are.
struct Chunk {
  slots: Vec<Slot>,
  seqs: Vec<u64>,
  positions: Vec<usize>,
  end: usize,
  batch: u64,
}

/// The next slice of a stale scan; the tag is the scan's id.
unsafe extern "C" fn on_continue(raw_env: sys::napi_env, info: sys::napi_callback_info) -> Value {
  let env = Env::from_raw(raw_env);
  let _ = (|| -> Result<()> {
    let info = unsafe { js::callback_info(&env, info) }?;
    let registry = unsafe { registry_of(raw_env, info.this) }?;
    registry.continue_scan(&env, info.this, info.tag as u64);
    Ok(())
  })();
  js::clear_pending(&env);
  ptr::null_mut()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn decodes_what_the_script_encodes() {
    assert_eq!(decode_health(0), HealthReading::Unavailable);
    assert_eq!(decode_health(1), HealthReading::Failed);
    let reported = |state, timed_out| HealthReading::Reported { state, timed_out };
    assert_eq!(decode_health(2), reported(HealthState::Idle, false));
    assert_eq!(decode_health(3), reported(HealthState::Idle, true));
    assert_eq!(
      decode_health(2 + 2 * 3),
      reported(HealthState::Error, false)
    );
    assert_eq!(
      decode_health(2 + 1 + 2 * 4),
      reported(HealthState::Unknown, true)
    );
  }
}

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
use std::time::Instant;

use napi::{sys, Env, Result};

use crate::closing::{registry_of, schedule, SLICE};
use crate::js::{self, Value};
use crate::registry::NitySessionRegistry;
use nity_registry_core::{CloseReason, HealthReading, HealthState, Slot};

/// Sessions asked per chunk at first; adapted to the measured cost.
const FIRST_CHUNK: usize = 256;
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
    Ok(promise)
  }

  /// Runs chunks until the scan ends or the slice is used up. Never throws.
  fn continue_scan(&self, env: &Env, this: Value, id: u64) {
    let started = Instant::now();
    loop {
      let Some((slots, seqs, batch)) = self.next_chunk(id) else {
        return;
      };
      let chunk_started = Instant::now();
      // A failure to ask at all (not a getHealth that throws) leaves these
      // sessions alone rather than closing healthy ones.
      let codes = self.js.health(env, &slots).unwrap_or_else(|_| {
        js::clear_pending(env);
        vec![0; slots.len()]
      });
      let now = self.now();
      let orders: Vec<_> = {
        let mut core = self.core.borrow_mut();
        slots
          .iter()
          .zip(&seqs)
          .zip(codes)
          .filter(|(_, code)| decode_health(*code).is_stale())
          .filter_map(|((&slot, &seq), _)| {
            core.close_registration(slot, seq, CloseReason::CleanupStale, now)
          })
          .collect()
      };
      if !orders.is_empty() {
        self.close_later(env, this, orders, batch);
      }
      let finished = self.adapt_chunk(id, slots.len(), chunk_started.elapsed());
      if finished {
        self.scans.borrow_mut().scans.remove(&id);
        self.seal_batch(env, batch);
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

  /// The next chunk of registrations still current, as slots and seqs.
  fn next_chunk(&self, id: u64) -> Option<(Vec<Slot>, Vec<u64>, u64)> {
    let mut scans = self.scans.borrow_mut();
    let scan = scans.scans.get_mut(&id)?;
    let core = self.core.borrow();
    let end = (scan.position + scan.chunk).min(scan.registrations.len());
    let (slots, seqs) = scan.registrations[scan.position..end]
      .iter()
      .filter(|&&(slot, seq)| core.is_registered(slot, seq))
      .copied()
      .unzip();
    scan.position = end;
    Some((slots, seqs, scan.batch))
  }

  /// Sizes the next chunk to fill about a slice; reports whether the scan
  /// has seen every registration.
  fn adapt_chunk(&self, id: u64, asked: usize, took: std::time::Duration) -> bool {
    let mut scans = self.scans.borrow_mut();
    let Some(scan) = scans.scans.get_mut(&id) else {
      return true;
    };
    if asked > 0 {
      let per_session = took.as_secs_f64() / asked as f64;
      let fits = (SLICE.as_secs_f64() / 2.0 / per_session.max(1e-9)) as usize;
      scan.chunk = fits.clamp(16, MAX_CHUNK);
    }
    scan.position >= scan.registrations.len()
  }
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

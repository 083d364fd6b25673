//! `NativeRegistry`: the core's `Registry` as a napi-rs class. Each method
//! converts its arguments, calls the core once, and converts the answer.
//! Times are the caller's clock readings in milliseconds.

use napi::bindgen_prelude::{Float64Array, Uint32Array, Uint8Array};
use napi_derive::napi;
use std::sync::Arc;

use nity_registry_cluster::Member;
use nity_registry_core::{CloseOutcome, CloseReason, Cursor, Registry, Slot, StaleReading, Ticket};

use crate::cluster::NativeCluster;

use crate::error::{from_core, not_connected, Result};
use crate::health_codes::{reading, running};
use crate::options::PolicyOptions;
use crate::reports::{
  Admitted, CloseOrders, ClosedReport, MetricsReport, PageReport, Registrations, SessionInfoReport,
};

/// A close's ticket as JavaScript holds it.
fn ticket_number(ticket: Ticket) -> f64 {
  ticket.0 as f64
}

/// Why a single session is removed: the caller's `unregister`, another
/// node's request, or a conflict with another live node's record.
#[napi(string_enum = "camelCase")]
pub enum Removal {
  Unregister,
  Remote,
  Conflict,
}

impl From<Removal> for CloseReason {
  fn from(removal: Removal) -> CloseReason {
    match removal {
      Removal::Unregister => CloseReason::Unregister,
      Removal::Remote => CloseReason::Remote,
      Removal::Conflict => CloseReason::Conflict,
    }
  }
}

/// How a handle's close ended, one byte a close in [`NativeRegistry::settle`].
#[napi]
pub enum CloseEnd {
  /// `close()` returned, or its promise fulfilled.
  Closed,
  /// `close()` threw, or its promise rejected.
  Failed,
  /// `close()` did not settle before the close deadline.
  TimedOut,
}

fn close_outcome(end: u8) -> CloseOutcome {
  match end {
    e if e == CloseEnd::Closed as u8 => CloseOutcome::Closed,
    e if e == CloseEnd::TimedOut as u8 => CloseOutcome::TimedOut,
    _ => CloseOutcome::Failed,
  }
}

/// The session bookkeeping of one registry: who owns what, the closes in
/// flight, limits, activity, metrics and cursors. It never sees a session
/// handle; sessions are named by id and by slot.
#[napi]
pub struct NativeRegistry {
  core: Registry,
  /// The fleet this registry's changes are published to, in cluster mode.
  cluster: Option<Arc<Member>>,
}

impl NativeRegistry {
  /// Hands the change feed of the last call to the cluster, if any.
  fn publish(&mut self) {
    if let Some(member) = &self.cluster {
      for change in self.core.take_changes() {
        member.publish(change);
      }
    }
  }
}

#[napi]
impl NativeRegistry {
  /// `keepIds`: keep each session's id, which a change feed (cluster mode)
  /// needs; without it the core holds no session ids at all.
  #[napi(constructor)]
  pub fn new(policy: PolicyOptions, keep_ids: bool) -> Self {
    let mut core = if keep_ids {
      Registry::keeping_ids()
    } else {
      Registry::new()
    };
    core.set_policy(policy.into());
    NativeRegistry {
      core,
      cluster: None,
    }
  }

  /// Publishes this registry's sessions, and every later change, through
  /// `cluster` (which must be connected; the registry must keep ids).
  #[napi]
  pub fn attach_cluster(&mut self, cluster: &NativeCluster) -> napi::Result<()> {
    let member = cluster.member().ok_or_else(not_connected)?;
    if !self.core.set_change_feed(true) {
      return Err(napi::Error::from_reason(
        "ERR_CLUSTER_UNAVAILABLE: this registry was made without session ids and cannot publish",
      ));
    }
    self.cluster = Some(member);
    self.publish();
    Ok(())
  }

  /// Hands the cluster every session held now, for it to re-assert (it
  /// asked: what Redis holds for this node can no longer be trusted). The
  /// snapshot stands for every change published before it.
  #[napi]
  pub fn reseed_cluster(&mut self) {
    if let Some(member) = &self.cluster {
      self.core.set_change_feed(false);
      self.core.set_change_feed(true);
      member.seed(self.core.take_changes());
    }
  }

  /// Stops publishing (the node left the fleet).
  #[napi]
  pub fn detach_cluster(&mut self) {
    self.cluster = None;
    self.core.set_change_feed(false);
  }

  /// Admits a session and returns its slot. `heldBy`: the client the
  /// surface's index has this session id under, if any. Fails without a
  /// change on empty ids, a taken id, a reached limit or a disposed
  /// registry.
  #[napi]
  pub fn register(
    &mut self,
    client_id: String,
    session_id: String,
    held_by: Option<String>,
    now: f64,
  ) -> Result<u32> {
    let slot = self
      .core
      .register(&client_id, &session_id, held_by.as_deref(), now)
      .map_err(from_core)?;
    self.publish();
    Ok(slot.0)
  }

  /// `take` registrations whose removal could make room for a new session
  /// of `client_id`, least recently active first (none when the registry
  /// has room), resuming after the candidate `(after_slot, after_seq)` of
  /// the previous call when given. `lookups`: the surface's lookup times by
  /// slot.
  #[napi]
  pub fn eviction_candidates(
    &mut self,
    client_id: String,
    after_slot: Option<u32>,
    after_seq: Option<f64>,
    take: u32,
    lookups: Float64Array,
  ) -> Registrations {
    let after = after_slot
      .zip(after_seq)
      .map(|(slot, seq)| (Slot(slot), seq as u64));
    self
      .core
      .eviction_candidates(&client_id, after, take as usize, &lookups)
      .into()
  }

  /// Admits a session, closing the registration `(victim_slot, victim_seq)`
  /// in the same step if the registry is full and that makes room; fails
  /// with the limit's error and changes nothing if it is full and there is
  /// no such victim.
  #[napi]
  pub fn register_evicting(
    &mut self,
    client_id: String,
    session_id: String,
    held_by: Option<String>,
    victim_slot: Option<u32>,
    victim_seq: Option<f64>,
    now: f64,
  ) -> Result<Admitted> {
    let victim = victim_slot
      .zip(victim_seq)
      .map(|(slot, seq)| (Slot(slot), seq as u64));
    let (slot, evicted) = self
      .core
      .register_evicting(&client_id, &session_id, held_by.as_deref(), victim, now)
      .map_err(from_core)?;
    self.publish();
    Ok(Admitted {
      slot: slot.0,
      evicted_ticket: evicted.map(|order| ticket_number(order.ticket)),
      evicted_slot: evicted.map(|order| order.slot.0),
    })
  }

  /// Removes the session in `slot` for closing and counts its close as
  /// started: the caller calls `close()` at once. The close's ticket, or
  /// `undefined` when the slot is free.
  #[napi]
  pub fn unregister(&mut self, slot: u32, why: Removal, now: f64) -> Option<f64> {
    let order = self.core.unregister(Slot(slot), why.into(), now);
    self.publish();
    order.map(|order| ticket_number(order.ticket))
  }

  /// Removes every session of a client for closing, in registration order.
  /// `remote`: on another node's behalf (close reason `'remote'`).
  #[napi]
  pub fn cleanup_client(&mut self, client_id: String, remote: bool, now: f64) -> CloseOrders {
    let reason = if remote {
      CloseReason::Remote
    } else {
      CloseReason::CleanupClient
    };
    let orders = self.core.cleanup_client(&client_id, reason, now);
    self.publish();
    orders.into()
  }

  /// Removes every session for closing with reason `'shutdown'`.
  #[napi]
  pub fn close_all(&mut self, now: f64) -> CloseOrders {
    let orders = self.core.close_all(now);
    self.publish();
    orders.into()
  }

  /// Refuses every later registration. Idempotent.
  #[napi]
  pub fn dispose(&mut self) {
    self.core.dispose();
  }

  #[napi(getter)]
  pub fn disposed(&self) -> bool {
    self.core.is_disposed()
  }

  /// Notes that the `close()` of these closes has been called.
  #[napi]
  pub fn start_closes(&mut self, tickets: Float64Array, now: f64) {
    for &ticket in tickets.iter() {
      self.core.start_close(Ticket(ticket as u64), now);
    }
  }

  /// How many more closes may start now under `maxConcurrentCloses`.
  #[napi(getter)]
  pub fn close_capacity(&self) -> u32 {
    u32::try_from(self.core.close_capacity()).unwrap_or(u32::MAX)
  }

  /// Records how closes ended: `tickets[i]` ended as `ends[i]` (a
  /// `CloseEnd`). Only the first report of a ticket counts.
  #[napi]
  pub fn settle(&mut self, tickets: Float64Array, ends: Uint8Array, now: f64) {
    for (&ticket, &end) in tickets.iter().zip(ends.iter()) {
      self
        .core
        .settle(Ticket(ticket as u64), close_outcome(end), now);
    }
  }

  /// [`NativeRegistry::settle`], with what the close hooks are told: one
  /// row per ticket, absent for a ticket reported before.
  #[napi]
  pub fn settle_reported(
    &mut self,
    tickets: Float64Array,
    ends: Uint8Array,
    now: f64,
  ) -> Vec<Option<ClosedReport>> {
    tickets
      .iter()
      .zip(ends.iter())
      .map(|(&ticket, &end)| {
        self
          .core
          .settle(Ticket(ticket as u64), close_outcome(end), now)
          .map(ClosedReport::from)
      })
      .collect()
  }

  /// For each slot, 1 when its session is past the idle timeout, else 0;
  /// `lookups`: the surface's lookup times by slot.
  #[napi]
  pub fn idle_expired(&self, slots: Uint32Array, now: f64, lookups: Float64Array) -> Uint8Array {
    Uint8Array::new(
      slots
        .iter()
        .map(|&slot| u8::from(self.core.idle_expired(Slot(slot), now, &lookups)))
        .collect(),
    )
  }

  /// The core's stale cleanup over what a scan read of the sessions in
  /// `slots` (each still the session the surface read): `health[i]` (a
  /// `HealthCode`), `timedOut[i]` (0 or 1) and `running[i]` (a
  /// `RunningCode`).
  #[napi]
  pub fn close_stale(
    &mut self,
    slots: Uint32Array,
    health: Uint8Array,
    timed_out: Uint8Array,
    running_codes: Uint8Array,
    now: f64,
  ) -> CloseOrders {
    let readings = slots.iter().enumerate().map(|(i, &slot)| StaleReading {
      slot: Slot(slot),
      health: reading(health[i], timed_out[i] == 1),
      running: running(running_codes[i]),
    });
    let orders = self.core.close_stale(readings, now);
    self.publish();
    orders.into()
  }

  /// Records activity of the session in `slot`.
  #[napi]
  pub fn touch(&mut self, slot: u32, now: f64) {
    self.core.touch(Slot(slot), now);
  }

  /// Merges finite metric values (`values[i]` for `names[i]`, in that
  /// order) into the record of the session in `slot`.
  #[napi]
  pub fn update_metrics(&mut self, slot: u32, names: Vec<String>, values: Float64Array) -> bool {
    let updates: Vec<(&str, f64)> = names
      .iter()
      .map(String::as_str)
      .zip(values.iter().copied())
      .collect();
    self.core.update_metrics(Slot(slot), &updates)
  }

  /// What the core knows of the session in `slot` (the surface adds the
  /// ids); `lookups`: the surface's lookup times by slot.
  #[napi]
  pub fn session_info(&self, slot: u32, lookups: Float64Array) -> Option<SessionInfoReport> {
    self
      .core
      .session_info(Slot(slot), &lookups)
      .map(SessionInfoReport::from)
  }

  #[napi]
  pub fn metrics(&self) -> MetricsReport {
    self.core.metrics().into()
  }

  /// One page in registration order, of all sessions or one client's.
  #[napi]
  pub fn list(
    &self,
    client_id: Option<String>,
    after: Option<String>,
    limit: u32,
    lookups: Float64Array,
  ) -> Result<PageReport> {
    let after = after
      .map(|text| Cursor::decode(&text))
      .transpose()
      .map_err(from_core)?;
    let (slots, next) = self.core.list(client_id.as_deref(), after, limit as usize);
    let rows = slots
      .into_iter()
      .filter_map(|slot| self.core.session_info(slot, &lookups))
      .map(SessionInfoReport::from)
      .collect();
    Ok(PageReport::new(rows, next))
  }
}

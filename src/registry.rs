//! `NativeRegistry`: the core's `Registry` as a napi-rs class. Each method
//! converts its arguments, calls the core once, and converts the answer.
//! Times are the caller's clock readings in milliseconds.

use napi::bindgen_prelude::{Float64Array, Uint32Array, Uint8Array};
use napi_derive::napi;
use std::sync::Arc;

use nity_registry_cluster::Member;
use nity_registry_core::{
  CloseOutcome, CloseReason, Cursor, LimitScope, Registry, Slot, StaleReading, Ticket, Unregister,
};

use crate::cluster::NativeCluster;

use crate::error::{from_core, not_connected, Result};
use crate::health_codes::{reading, running};
use crate::options::PolicyOptions;
use crate::reports::{
  Admitted, CloseOrders, ClosedReport, MetricsReport, PageReport, Registrations, SessionInfoReport,
};

/// Which limit a registration ran into; `Registry` and `Client` as the
/// core's `LimitScope`.
#[napi(string_enum = "lowercase")]
pub enum Limit {
  Registry,
  Client,
}

impl From<LimitScope> for Limit {
  fn from(scope: LimitScope) -> Limit {
    match scope {
      LimitScope::Registry => Limit::Registry,
      LimitScope::Client => Limit::Client,
    }
  }
}

impl From<Limit> for LimitScope {
  fn from(limit: Limit) -> LimitScope {
    match limit {
      Limit::Registry => LimitScope::Registry,
      Limit::Client => LimitScope::Client,
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
  #[napi(constructor)]
  pub fn new(policy: PolicyOptions) -> Self {
    let mut core = Registry::new();
    core.set_policy(policy.into());
    NativeRegistry {
      core,
      cluster: None,
    }
  }

  /// Publishes this registry's sessions, and every later change, through
  /// `cluster` (which must be connected).
  #[napi]
  pub fn attach_cluster(&mut self, cluster: &NativeCluster) -> napi::Result<()> {
    let member = cluster.member().ok_or_else(not_connected)?;
    self.cluster = Some(member);
    self.core.set_change_feed(true);
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

  /// Admits a session and returns its slot. Fails without a change on empty
  /// ids, a taken id, a reached limit or a disposed registry.
  #[napi]
  pub fn register(&mut self, client_id: String, session_id: String, now: f64) -> Result<u32> {
    let slot = self
      .core
      .register(&client_id, &session_id, now)
      .map_err(from_core)?;
    self.publish();
    Ok(slot.0)
  }

  /// Which limit a new session of `client_id` would break now, if any.
  #[napi]
  pub fn full(&self, client_id: String) -> Option<Limit> {
    self.core.full(&client_id).map(Limit::from)
  }

  /// `take` registrations that could make room under `limit`, least
  /// recently active first, resuming after the candidate `(after_slot,
  /// after_seq)` of the previous call when given.
  #[napi]
  pub fn eviction_candidates(
    &self,
    limit: Limit,
    client_id: String,
    after_slot: Option<u32>,
    after_seq: Option<f64>,
    take: u32,
  ) -> Registrations {
    let after = after_slot
      .zip(after_seq)
      .map(|(slot, seq)| (Slot(slot), seq as u64));
    self
      .core
      .eviction_candidates(limit.into(), &client_id, after, take as usize)
      .into()
  }

  /// Admits a session by closing the registration `(victim_slot,
  /// victim_seq)` in the same step, if that makes room; fails with the
  /// limit's error and changes nothing otherwise.
  #[napi]
  pub fn register_evicting(
    &mut self,
    client_id: String,
    session_id: String,
    victim_slot: u32,
    victim_seq: f64,
    now: f64,
  ) -> Result<Admitted> {
    let (slot, evicted) = self
      .core
      .register_evicting(
        &client_id,
        &session_id,
        (Slot(victim_slot), victim_seq as u64),
        now,
      )
      .map_err(from_core)?;
    self.publish();
    Ok(Admitted {
      slot: slot.0,
      evicted_ticket: evicted.map(|order| order.ticket.0 as f64),
      evicted_slot: evicted.map(|order| order.slot.0),
    })
  }

  /// The error of a registration refused by `limit`.
  #[napi]
  pub fn limit_error(&self, limit: Limit, client_id: String) -> Result<()> {
    Err(from_core(self.core.limit_error(limit.into(), &client_id)))
  }

  /// Removes a session for closing and counts its close as started: the
  /// caller calls `close()` at once. The close's ticket, or `undefined`
  /// when the session is not registered.
  #[napi]
  pub fn unregister(&mut self, session_id: String, now: f64) -> Option<f64> {
    let found = self.core.unregister_now(&session_id, now);
    self.publish();
    match found {
      Unregister::Close(order) => Some(order.ticket.0 as f64),
      Unregister::AlreadyClosing(_) | Unregister::NotRegistered => None,
    }
  }

  /// [`NativeRegistry::unregister`] on another node's behalf (close reason
  /// `'remote'`).
  #[napi]
  pub fn unregister_remote(&mut self, session_id: String, now: f64) -> Option<f64> {
    let found = self
      .core
      .unregister_now_because(&session_id, CloseReason::Remote, now);
    self.publish();
    match found {
      Unregister::Close(order) => Some(order.ticket.0 as f64),
      Unregister::AlreadyClosing(_) | Unregister::NotRegistered => None,
    }
  }

  /// The ticket of the close in flight for a session id that is not
  /// registered, if any.
  #[napi]
  pub fn closing_ticket(&self, session_id: String) -> Option<f64> {
    self
      .core
      .closing_ticket(&session_id)
      .map(|ticket| ticket.0 as f64)
  }

  /// Removes every session of a client for closing, in registration order.
  #[napi]
  pub fn cleanup_client(&mut self, client_id: String, now: f64) -> CloseOrders {
    let orders = self.core.cleanup_client(&client_id, now);
    self.publish();
    orders.into()
  }

  /// [`NativeRegistry::cleanup_client`] on another node's behalf (close
  /// reason `'remote'`).
  #[napi]
  pub fn cleanup_client_remote(&mut self, client_id: String, now: f64) -> CloseOrders {
    let orders = self
      .core
      .cleanup_client_because(&client_id, CloseReason::Remote, now);
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

  /// Every current registration, for a stale scan.
  #[napi]
  pub fn registrations(&self) -> Registrations {
    self.core.registrations().into()
  }

  /// For each slot, 1 when its session is past the idle timeout, else 0.
  #[napi]
  pub fn idle_expired(&self, slots: Uint32Array, now: f64) -> Uint8Array {
    Uint8Array::new(
      slots
        .iter()
        .map(|&slot| u8::from(self.core.idle_expired(Slot(slot), now)))
        .collect(),
    )
  }

  /// The core's stale cleanup over scanned registrations: `slots[i]` /
  /// `seqs[i]` read `health[i]` (a `HealthCode`), `timedOut[i]` (0 or 1)
  /// and `running[i]` (a `RunningCode`).
  #[napi]
  pub fn close_stale(
    &mut self,
    slots: Uint32Array,
    seqs: Float64Array,
    health: Uint8Array,
    timed_out: Uint8Array,
    running_codes: Uint8Array,
    now: f64,
  ) -> CloseOrders {
    let readings = slots
      .iter()
      .zip(seqs.iter())
      .enumerate()
      .map(|(i, (&slot, &seq))| StaleReading {
        slot: Slot(slot),
        seq: seq as u64,
        health: reading(health[i], timed_out[i] == 1),
        running: running(running_codes[i]),
      });
    let orders = self.core.close_stale(readings, now);
    self.publish();
    orders.into()
  }

  /// Records activity of a session by id; `false` when it is not registered.
  #[napi]
  pub fn touch(&mut self, session_id: String, now: f64) -> bool {
    self.core.touch_session(&session_id, now)
  }

  /// Records lookups that handed sessions out: `slots[i]` at `times[i]`, in
  /// that order.
  #[napi]
  pub fn note_lookups(&mut self, slots: Uint32Array, times: Float64Array) {
    for (&slot, &time) in slots.iter().zip(times.iter()) {
      self.core.note_lookup(Slot(slot), time);
    }
  }

  /// Merges finite metric values (`values[i]` for `names[i]`, in that
  /// order) into a session's record; `false` when the session is not
  /// registered.
  #[napi]
  pub fn update_metrics(
    &mut self,
    session_id: String,
    names: Vec<String>,
    values: Float64Array,
  ) -> bool {
    let updates: Vec<(&str, f64)> = names
      .iter()
      .map(String::as_str)
      .zip(values.iter().copied())
      .collect();
    self.core.update_metrics(&session_id, &updates)
  }

  #[napi]
  pub fn session_info(&self, session_id: String) -> Option<SessionInfoReport> {
    let slot = self.core.session(&session_id)?;
    self.core.session_info(slot).map(SessionInfoReport::from)
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
  ) -> Result<PageReport> {
    let after = after
      .map(|text| Cursor::decode(&text))
      .transpose()
      .map_err(from_core)?;
    let (slots, next) = self.core.list(client_id.as_deref(), after, limit as usize);
    let rows = slots
      .into_iter()
      .filter_map(|slot| self.core.session_info(slot))
      .map(SessionInfoReport::from)
      .collect();
    Ok(PageReport::new(rows, next))
  }
}

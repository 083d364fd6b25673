//! The JavaScript half of the bindings: a few small functions, compiled once
//! per registry from the source below, for the work that N-API does badly or
//! slowly from the native side. They are mechanics only; every decision
//! (what is stale, what to close, what counts) is made in the core.
//!
//! - `deferred` / `settle`: promises whose resolve and reject functions live
//!   in a JavaScript array on the registry, not in N-API deferreds. A
//!   deferred is a garbage-collection root until settled, so a close that
//!   never settles would pin its promise, and whatever awaits it, forever.
//! - `closeOne`: `unregister`'s whole close in one call: takes the handle out
//!   of its slot, makes the promise, starts the close.
//! - `start`: calls `close()` as a method and follows what it returns,
//!   reporting the outcome through the registry's native `settled` function.
//!   One call instead of a dozen N-API calls and two bound functions a close.
//! - `park` / `startMany` / `emptyQueue`: bulk cleanups move their handles
//!   into a queue in one call and start them in bursts.
//! - `pick`: the handles of a list of slots, as a new array.
//! - `firstIdle`: the first of a list of sessions whose `isRunning()` says
//!   false, for eviction.
//! - `timer` / `cancel` / `systemClock`: timers on the registry's clock
//!   (injected or the system's) that hold the registry only weakly and never
//!   keep the process alive.
//! - `health`: reads each session's `getHealth()` into a number the core
//!   decodes (see `decode_health` in `stale_scan.rs`), and `isRunning()` of
//!   those the core marks idle, until its time budget is spent.
//! - `counts` / `count` / `stats`: the mirror of sessions per client (a `Map`
//!   in order of client arrival) and the stats snapshot built from it, where
//!   every client id, `__proto__` included, is an ordinary key.

/// Evaluates to an object of functions; they close over nothing but each other.
pub const SOURCE: &str = r#"(() => {
  'use strict';

  const now = typeof performance === 'object' && performance !== null ? () => performance.now() : Date.now;

  // Only a session that says so is not running; one that cannot say is.
  function isRunning(handle) {
    try {
      return handle.isRunning() !== false;
    } catch {
      return true;
    }
  }

  function start(handle, ticket, registry, settled) {
    let result;
    try {
      const close = handle.close;
      if (typeof close !== 'function') {
        const error = new TypeError('session.close is not a function');
        error.code = 'ERR_INVALID_SESSION';
        throw error;
      }
      result = close.call(handle);
      if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
        const then = result.then;
        if (typeof then === 'function') {
          then.call(
            result,
            (value) => settled.call(registry, ticket, true, value),
            (error) => settled.call(registry, ticket, false, error),
          );
          return;
        }
      }
    } catch (error) {
      settled.call(registry, ticket, false, error);
      return;
    }
    settled.call(registry, ticket, true, undefined);
  }

  return {
    deferred(waiters, i) {
      return new Promise((resolve, reject) => {
        waiters[2 * i] = resolve;
        waiters[2 * i + 1] = reject;
      });
    },
    settle(waiters, i, fulfilled, value) {
      const settle = waiters[2 * i + (fulfilled ? 0 : 1)];
      waiters[2 * i] = undefined;
      waiters[2 * i + 1] = undefined;
      settle(value);
    },
    closeOne(handles, slot, waiters, i, ticket, registry, settled) {
      const handle = handles[slot];
      handles[slot] = undefined;
      const promise = new Promise((resolve, reject) => {
        waiters[2 * i] = resolve;
        waiters[2 * i + 1] = reject;
      });
      start(handle, ticket, registry, settled);
      return promise;
    },
    park(handles, queue, slots, tickets, count) {
      for (let i = 0; i < count; i++) {
        const slot = slots[i];
        queue.push(handles[slot], tickets[i]);
        handles[slot] = undefined;
      }
    },
    startMany(queue, from, count, registry, settled) {
      for (let i = from; i < from + count; i++) {
        const handle = queue[2 * i];
        const ticket = queue[2 * i + 1];
        queue[2 * i] = undefined;
        queue[2 * i + 1] = undefined;
        start(handle, ticket, registry, settled);
      }
    },
    firstIdle(handles, slots, count) {
      for (let i = 0; i < count; i++) {
        if (!isRunning(handles[slots[i]])) return i;
      }
      return -1;
    },
    systemClock() {
      return {
        now: () => Date.now(),
        setTimeout: (callback, ms) => setTimeout(callback, ms),
        clearTimeout: (handle) => clearTimeout(handle),
      };
    },
    timer(clock, ms, registry, native, tag) {
      // The timer holds its registry weakly: a registry dropped without
      // dispose() is collected, and its timer then does nothing.
      const target = new WeakRef(registry);
      const handle = clock.setTimeout(() => {
        const registry = target.deref();
        if (registry !== undefined) native.call(registry, tag);
      }, ms);
      if (handle !== null && typeof handle === 'object' && typeof handle.unref === 'function') handle.unref();
      return handle;
    },
    cancel(clock, handle) {
      clock.clearTimeout(handle);
    },
    emptyQueue(queue) {
      queue.length = 0;
    },
    pick(handles, slots, count) {
      const picked = new Array(count);
      for (let i = 0; i < count; i++) picked[i] = handles[slots[i]];
      return picked;
    },
    health(handles, slots, count, budget, idle) {
      const deadline = now() + budget;
      let i = 0;
      for (; i < count; i++) {
        if (i % 8 === 0 && i > 0 && now() >= deadline) break;
        let code = 1;
        const handle = handles[slots[i]];
        if (idle[i] === 1) idle[i] = isRunning(handle) ? 1 : 2;
        try {
          if (handle !== null && typeof handle === 'object') {
            const getHealth = handle.getHealth;
            if (typeof getHealth !== 'function') {
              code = 0;
            } else {
              const health = getHealth.call(handle);
              if (health !== null && typeof health === 'object') {
                const state = health.state;
                const kind = state === 'idle' ? 0 : state === 'active' ? 1 : state === 'completed' ? 2 : state === 'error' ? 3 : 4;
                code = 2 + (health.isTimedOut === true ? 1 : 0) + 2 * kind;
              }
            }
          }
        } catch {
          code = 1;
        }
        slots[i] = code;
      }
      return i;
    },
    counts() {
      return new Map();
    },
    count(counts, client, count, recreated) {
      if (count === 0 || recreated) counts.delete(client);
      if (count > 0) counts.set(client, count);
    },
    stats(totalSessions, activeClients, counts) {
      const sessionsByClient = {};
      for (const [client, count] of counts) {
        if (client === '__proto__') {
          Object.defineProperty(sessionsByClient, client, { value: count, writable: true, enumerable: true, configurable: true });
        } else {
          sessionsByClient[client] = count;
        }
      }
      return { totalSessions, activeClients, sessionsByClient };
    },
  };
})()"#;

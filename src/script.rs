//! The JavaScript half of the bindings: a few small functions, compiled once
//! per registry from the source below, for the work that N-API does badly
//! from the native side.
//!
//! - Promises whose resolve and reject functions live in a JavaScript array
//!   on the registry, not in N-API deferreds: a deferred is a garbage
//!   collection root until settled, so a close that never settles would pin
//!   its promise, and whatever waits on it, forever.

/// Evaluates to an object of functions; they close over nothing.
pub const SOURCE: &str = r#"'use strict';
({
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
})"#;

// The registry's time. Readings and timers come from its `clock` option, or
// else from `Date.now()`, `setTimeout` and `clearTimeout` as they are on
// `globalThis` when used, so that jest's, vitest's and node:test's fake
// timers drive the registry. Timers never keep the process alive.

import type { NitySessionClock } from './types'

/** Time as the registry uses it. */
export interface Time {
  now(): number
  /** Calls `callback` after `ms` milliseconds; never keeps the process alive. */
  setTimer(callback: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
}

function unref(handle: unknown): unknown {
  const timer = handle as { unref?: unknown } | null
  if (timer !== null && typeof timer === 'object' && typeof timer.unref === 'function') {
    ;(timer as { unref(): void }).unref()
  }
  return handle
}

/** The system's time, looked up on `globalThis` at every use. */
export const systemTime: Time = {
  now: () => globalThis.Date.now(),
  setTimer: (callback, ms) => unref(globalThis.setTimeout(callback, ms)),
  clearTimer: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
}

/**
 * The time of a `clock` option; its methods are called as methods. A
 * `now()` that throws or answers something other than a finite number is
 * replaced by the system's reading, so a broken clock cannot break the
 * registry's bookkeeping.
 */
export function clockTime(clock: NitySessionClock): Time {
  return {
    now: () => {
      try {
        const now: unknown = clock.now()
        if (typeof now === 'number' && Number.isFinite(now)) return now
      } catch {
        // Fall through to the system clock.
      }
      return globalThis.Date.now()
    },
    setTimer: (callback, ms) => unref(clock.setTimeout(callback, ms)),
    clearTimer: (handle) => clock.clearTimeout(handle),
  }
}

// Bulk work yields to the event loop between slices of a few milliseconds.
// Slices are measured and scheduled with the real timers, captured when the
// package loads: fake timers then still drive the registry's own timers, and
// a cleanup does not hang until a test advances fake time.
const realSetImmediate: (callback: () => void) => unknown =
  typeof setImmediate === 'function' ? setImmediate : (callback) => setTimeout(callback, 0)
const realPerformance = globalThis.performance
const realSetTimeout = globalThis.setTimeout

/** How long one slice of bulk work may hold the event loop, in milliseconds. */
export const SLICE_MS = 3

/** A monotonic reading in milliseconds, for slice budgets. */
export function monotonic(): number {
  return realPerformance.now()
}

/** Runs `callback` in a later turn of the event loop. */
export function nextTurn(callback: () => void): void {
  realSetImmediate(callback)
}

/** Runs `callback` after `ms` on the real clock, without keeping the process alive (network retries). */
export function afterRealDelay(callback: () => void, ms: number): void {
  realSetTimeout(callback, ms).unref()
}

/** Runs `callback` once the promise jobs queued so far have run (never faked). */
export function afterPromiseJobs(callback: () => void): void {
  void Promise.resolve().then(callback)
}

// The registry's time. Readings and timers come from its `clock` option, or
// else from `Date.now()`, `setTimeout` and `clearTimeout` as they are on
// `globalThis` when used, so that every runner's fake timers drive the
// registry: jest's modern and legacy ones, vitest's, and node:test's
// `mock.timers` with or without `Date`.
//
// Some fake timers move the timers but not `Date.now()` (jest's legacy
// timers, node:test without the `Date` API). A registry's reading therefore
// never runs behind its own timers: once a timer set for `ms` has fired, the
// registry's time is at least the reading it was set at plus `ms`. Its close
// deadlines and its automatic cleanup then fire and judge as fake time
// moves, in every mode, instead of re-arming forever.

import type { NitySessionClock } from './types'

/** Time as one registry uses it. */
export interface Time {
  /** Milliseconds; never less than the due time of a timer of this `Time` that has fired. */
  now(): number
  /**
   * Calls `callback` after `ms` milliseconds, at most `MAX_DELAY_MS` (a
   * caller that waits longer arms again when it fires). A timer keeps the process
   * alive only with `keepAlive` (a timer that settles a promise someone may
   * await); otherwise it is unref'd.
   */
  setTimer(callback: () => void, ms: number, keepAlive?: boolean): unknown
  /** Makes a timer of `setTimer` keep the process alive, or stop keeping it alive. */
  keepAlive(handle: unknown, keepAlive: boolean): void
  clearTimer(handle: unknown): void
}

/** The longest delay `setTimeout` honours; a longer one fires at once in Node. */
export const MAX_DELAY_MS = 0x7fff_ffff

/** Calls the timer's `ref()` or `unref()` where it has one (Node's timers; fake ones may not). */
function setRef(handle: unknown, ref: boolean): void {
  const timer = handle as { ref?: unknown; unref?: unknown } | null
  if (timer === null || typeof timer !== 'object') return
  const method = ref ? timer.ref : timer.unref
  if (typeof method === 'function') method.call(timer)
}

/** A reading of the `clock` option; one that throws or is not a finite number is replaced by `Date.now()`. */
function clockReading(clock: NitySessionClock): () => number {
  return () => {
    try {
      const now: unknown = clock.now()
      if (typeof now === 'number' && Number.isFinite(now)) return now
    } catch {
      // Fall through to the system clock.
    }
    return globalThis.Date.now()
  }
}

/**
 * One registry's time, on its `clock` option or the system's (looked up on
 * `globalThis` at every use). Its methods of `clock` are called as methods.
 */
export function registryTime(clock: NitySessionClock | undefined): Time {
  const read = clock === undefined ? () => globalThis.Date.now() : clockReading(clock)
  const schedule =
    clock === undefined
      ? (callback: () => void, ms: number): unknown => globalThis.setTimeout(callback, ms)
      : (callback: () => void, ms: number): unknown => clock.setTimeout(callback, ms)
  const cancel =
    clock === undefined
      ? (handle: unknown): void => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0])
      : (handle: unknown): void => clock.clearTimeout(handle)
  /** The latest due time of a fired timer. */
  let floor = -Infinity
  const now = (): number => {
    const reading = read()
    return reading > floor ? reading : floor
  }
  return {
    now,
    setTimer(callback, ms, keepAlive = false) {
      const delay = Math.min(Math.max(0, ms), MAX_DELAY_MS)
      const due = now() + delay
      const handle = schedule(() => {
        if (due > floor) floor = due
        callback()
      }, delay)
      if (!keepAlive) setRef(handle, false)
      return handle
    },
    keepAlive: setRef,
    clearTimer: cancel,
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

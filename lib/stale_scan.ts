// The stale cleanup's scan: reads every session's health (and, for those the
// core says are past the idle timeout, whether they are running), hands the
// readings to the core, which picks what to close, and closes it. It walks
// the surface's own index, in registration order, so nothing is copied out
// of the core first; large registries are scanned in slices that yield to
// the event loop.

import { HealthCode, RunningCode, type NativeRegistry } from './native'
import type { Batch, CloseQueue } from './close_queue'
import type { Entry, SessionIndex } from './session_index'
import { monotonic, nextTurn, SLICE_MS, type Time } from './time'

/** Sessions read per call into the core. */
const CHUNK = 4096
/** Sessions read between looks at the clock. */
const CLOCK_EVERY = 32

const STATES: Record<string, HealthCode> = {
  idle: HealthCode.Idle,
  active: HealthCode.Active,
  completed: HealthCode.Completed,
  error: HealthCode.Error,
}

/**
 * What a session's `isRunning()` answers, as a code: `Running` for `true`,
 * `NotRunning` for `false`, `Unknown` when it has no `isRunning`, throws or
 * answers anything else. What an unknown answer means is the core's to
 * decide (it never closes or evicts on one).
 */
export function askRunning(handle: unknown): RunningCode {
  try {
    const isRunning = (handle as { isRunning?: unknown }).isRunning
    if (typeof isRunning !== 'function') return RunningCode.Unknown
    const answer: unknown = isRunning.call(handle)
    return answer === false ? RunningCode.NotRunning : answer === true ? RunningCode.Running : RunningCode.Unknown
  } catch {
    return RunningCode.Unknown
  }
}

/** Reads one session's health into the columns at `i`. */
function readHealth(handle: unknown, health: Uint8Array, timedOut: Uint8Array, i: number): void {
  try {
    const getHealth = (handle as { getHealth?: unknown }).getHealth
    if (typeof getHealth !== 'function') {
      health[i] = HealthCode.Unavailable
      return
    }
    const reading: unknown = getHealth.call(handle)
    if (reading === null || typeof reading !== 'object') {
      health[i] = HealthCode.Failed
      return
    }
    const { state, isTimedOut } = reading as { state?: unknown; isTimedOut?: unknown }
    health[i] = (typeof state === 'string' ? STATES[state] : undefined) ?? HealthCode.Unknown
    timedOut[i] = isTimedOut === true ? 1 : 0
  } catch {
    health[i] = HealthCode.Failed
  }
}

/**
 * Scans every session registered now into `batch`, then seals it. Sessions
 * registered during the scan are left for the next one; sessions removed
 * meanwhile are skipped.
 */
export function scanStale<H>(
  native: NativeRegistry,
  index: SessionIndex<H>,
  closes: CloseQueue,
  time: Time,
  tracksIdle: boolean,
  batch: Batch,
): void {
  // The index lists sessions in registration order, and a walk of it sees
  // what is removed or added meanwhile: it stops at the first session
  // registered after this point.
  const last = index.registered
  const walk = index.byId.values()
  let walked = false
  const size = Math.min(CHUNK, index.byId.size)
  const entries = new Array<Entry<H> | undefined>(size)
  const slots = new Uint32Array(size)
  const health = new Uint8Array(size)
  const timedOut = new Uint8Array(size)
  const running = new Uint8Array(size)
  let idle: Uint8Array | undefined
  // The chunk: `entries[0, filled)` were taken from the walk; those before
  // `position` have been handed to the core.
  let filled = 0
  let position = 0
  const refill = (): void => {
    filled = 0
    position = 0
    if (!walked) {
      walked = true
      // Map iterators have no `return`: leaving the loop early keeps the walk where it is.
      for (const entry of walk) {
        if (entry.serial > last) break
        entries[filled] = entry
        slots[filled] = entry.slot
        filled += 1
        if (filled === size) {
          walked = false
          break
        }
      }
    }
    idle =
      tracksIdle && filled > 0 ? native.idleExpired(slots.subarray(0, filled), time.now(), index.lookups) : undefined
  }
  const step = (started: number): void => {
    for (;;) {
      if (position === filled) {
        refill()
        if (filled === 0) break
      }
      timedOut.fill(0, position, filled)
      running.fill(0, position, filled)
      // Health is user code of unknown cost: the clock is looked at every
      // few sessions, and a spent slice ends the chunk early.
      let end = position
      for (; end < filled; end++) {
        if ((end - position) % CLOCK_EVERY === 0 && end > position && monotonic() - started >= SLICE_MS) break
        const entry = entries[end]!
        if (entry.slot !== slots[end]) continue // removed meanwhile: left out below
        if (idle !== undefined && idle[end] === 1) running[end] = askRunning(entry.handle)
        readHealth(entry.handle, health, timedOut, end)
      }
      // The readings go to the core only for sessions still in the slot
      // they were read from: user code above may have removed some.
      for (let i = position; i < end; i++) {
        if (entries[i]!.slot !== slots[i]) {
          health[i] = HealthCode.Unavailable
          running[i] = RunningCode.Unknown
        }
        entries[i] = undefined
      }
      const orders = native.closeStale(
        slots.subarray(position, end),
        health.subarray(position, end),
        timedOut.subarray(position, end),
        running.subarray(position, end),
        time.now(),
      )
      position = end
      if (orders.tickets.length > 0) {
        closes.enqueue(batch, orders.tickets, index.apply(orders.slots))
        closes.pump(started)
      }
      if (monotonic() - started >= SLICE_MS && !(walked && position === filled)) {
        nextTurn(() => step(monotonic()))
        return
      }
    }
    closes.seal(batch)
  }
  step(monotonic())
}

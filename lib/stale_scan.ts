// The stale cleanup's scan: reads every session's health (and, for those the
// core says are past the idle timeout, whether they are running), hands the
// readings to the core, which picks what to close, and closes it. Large
// registries are scanned in slices that yield to the event loop.

import { HealthCode, RunningCode, type NativeRegistry } from './native'
import type { Batch, CloseQueue } from './close_queue'
import type { SessionIndex } from './session_index'
import { monotonic, nextTurn, SLICE_MS, type Time } from './time'

/** Sessions read per call into the core. */
const CHUNK = 4096
/** Sessions read between looks at the clock. */
const CLOCK_EVERY = 16

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
 * meanwhile are skipped by the core.
 */
export function scanStale<H>(
  native: NativeRegistry,
  index: SessionIndex<H>,
  closes: CloseQueue,
  time: Time,
  tracksIdle: boolean,
  batch: Batch,
): void {
  // The snapshot counts against the first slice.
  const firstSlice = monotonic()
  const { slots, seqs } = native.registrations()
  const size = Math.min(CHUNK, slots.length)
  const health = new Uint8Array(size)
  const timedOut = new Uint8Array(size)
  const running = new Uint8Array(size)
  let position = 0
  const step = (started: number): void => {
    while (position < slots.length) {
      const end = Math.min(position + CHUNK, slots.length)
      const now = time.now()
      const idle = tracksIdle ? native.idleExpired(slots.subarray(position, end), now, index.lookups) : undefined
      timedOut.fill(0)
      running.fill(0)
      // Health is user code of unknown cost: the clock is looked at every
      // few sessions, and a spent slice ends the chunk early.
      let count = 0
      for (; position + count < end; count++) {
        if (count % CLOCK_EVERY === 0 && count > 0 && monotonic() - started >= SLICE_MS) break
        const entry = index.at(slots[position + count]!)
        if (entry === undefined) {
          health[count] = HealthCode.Unavailable
          continue
        }
        if (idle !== undefined && idle[count] === 1) {
          running[count] = askRunning(entry.handle)
        }
        readHealth(entry.handle, health, timedOut, count)
      }
      const orders = native.closeStale(
        slots.subarray(position, position + count),
        seqs.subarray(position, position + count),
        health.subarray(0, count),
        timedOut.subarray(0, count),
        running.subarray(0, count),
        time.now(),
      )
      if (orders.tickets.length > 0) {
        closes.enqueue(batch, orders.tickets, index.apply(orders.slots))
        closes.pump(started)
      }
      position += count
      if (position < slots.length && monotonic() - started >= SLICE_MS) {
        nextTurn(() => step(monotonic()))
        return
      }
    }
    closes.seal(batch)
  }
  step(firstSlice)
}

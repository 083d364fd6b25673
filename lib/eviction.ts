// `register` in a full registry with `evictIdle`: the search for the least
// recently active session that says it is not running, and its eviction in
// one step of the core with the new registration.

import type { CloseQueue } from './close_queue'
import { callNative, fromNative, nityError } from './errors'
import { type Admitted, type Limit, type NativeRegistry, RunningCode } from './native'
import type { Entry, SessionIndex } from './session_index'
import { askRunning } from './stale_scan'

/** Candidates asked `isRunning()` per look at the core. */
const EVICTION_BATCH = 32
/** Searches before giving up, when `isRunning()` keeps changing the registry. */
const EVICTION_ATTEMPTS = 3

/** What the eviction works with, of the registry. */
export interface Parts<H> {
  native: NativeRegistry
  index: SessionIndex<H>
  closes: CloseQueue
  now: () => number
  flushLookups: () => void
}

/**
 * `register` in a full registry with `evictIdle`: finds the least recently
 * active session that says it is not running (asking in small batches,
 * least recently active first), then evicts it and registers in one step
 * of the core. `isRunning()` may call back into the registry, so the core
 * re-checks that the victim still makes room; if it no longer does, the
 * search starts over, a few times at most.
 */
export function registerEvicting<H>(parts: Parts<H>, clientId: string, id: string, session: H): void {
  const { native, index, closes, now, flushLookups } = parts
  for (let attempt = 0; attempt < EVICTION_ATTEMPTS; attempt++) {
    flushLookups()
    const limit = native.full(clientId)
    if (limit === undefined || limit === null) {
      // Room appeared meanwhile (a close or unregister in isRunning()).
      const slot = callNative(() => native.register(clientId, id, now()))
      index.add(slot, id, clientId, session)
      return
    }
    const victim = findIdle(native, index, limit, clientId)
    if (victim === undefined) throw limitError(native, limit, clientId)
    let admitted: Admitted
    try {
      admitted = native.registerEvicting(clientId, id, victim.slot, victim.seq, now())
    } catch (thrown) {
      const error = fromNative(thrown) as Error & { code?: string }
      if (error.code === 'ERR_SESSION_LIMIT' || error.code === 'ERR_CLIENT_SESSION_LIMIT') continue
      throw error
    }
    // The new session may be given the victim's slot: the victim's handle
    // leaves the index first, then the new one takes the slot, then the
    // victim's close may run.
    let evicted: Entry<H> | undefined
    if (admitted.evictedSlot !== undefined && admitted.evictedSlot !== null) {
      evicted = index.take(admitted.evictedSlot)
    }
    index.add(admitted.slot, id, clientId, session)
    if (admitted.evictedTicket !== undefined && admitted.evictedTicket !== null) {
      const batch = closes.batch(() => {}, false, false)
      closes.enqueue(batch, new Float64Array([admitted.evictedTicket]), [evicted?.handle])
      closes.seal(batch)
      closes.pump()
    }
    return
  }
  const limit = native.full(clientId)
  if (limit !== undefined && limit !== null) throw limitError(native, limit, clientId)
  throw nityError('ERR_SESSION_LIMIT', 'the registry is full and no idle session could be evicted')
}

/** The core's error for a registration refused by `limit`. */
function limitError(native: NativeRegistry, limit: Limit, clientId: string): unknown {
  try {
    native.limitError(limit, clientId)
  } catch (thrown) {
    return fromNative(thrown)
  }
  return nityError('ERR_SESSION_LIMIT', 'the registry is full')
}

/**
 * The least recently active registration under `limit` whose session says
 * it is not running. Each batch resumes after the last candidate of the
 * one before, so the search is linear in the sessions it asks; it asks
 * each session about once (a callback that removes the cursor's session
 * makes the next batch start over, so the asking is bounded too).
 */
function findIdle<H>(
  native: NativeRegistry,
  index: SessionIndex<H>,
  limit: Limit,
  clientId: string,
): { slot: number; seq: number } | undefined {
  let afterSlot: number | undefined
  let afterSeq: number | undefined
  for (let budget = index.byId.size + EVICTION_BATCH; budget > 0; budget -= EVICTION_BATCH) {
    const candidates = native.evictionCandidates(limit, clientId, afterSlot, afterSeq, EVICTION_BATCH)
    const count = candidates.slots.length
    if (count === 0) return undefined
    for (let i = 0; i < count; i++) {
      const entry = index.at(candidates.slots[i]!)
      // Only a session that says it is not running may be evicted.
      if (entry !== undefined && askRunning(entry.handle) === RunningCode.NotRunning) {
        return { slot: candidates.slots[i]!, seq: candidates.seqs[i]! }
      }
    }
    afterSlot = candidates.slots[count - 1]
    afterSeq = candidates.seqs[count - 1]
  }
  return undefined
}

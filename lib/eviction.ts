// `register` in a full registry with `evictIdle`: the search for the least
// recently active session that says it is not running, and its eviction in
// one step of the core with the new registration.

import type { CloseQueue } from './close_queue'
import { fromNative } from './errors'
import { type Admitted, type NativeRegistry, RunningCode } from './native'
import type { SessionIndex } from './session_index'
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
}

/**
 * `register` in a full registry with `evictIdle`, after the core refused it
 * with `refused`: finds the least recently active session that says it is
 * not running (asking in small batches, least recently active first), then
 * the core evicts it and registers in one step. `isRunning()` may call back
 * into the registry, so the core decides again with what is registered
 * then: there may be room now, or the victim may no longer make room (then
 * the search starts over, a few times at most). With no victim the core
 * refuses with the limit's error.
 */
export function registerEvicting<H>(parts: Parts<H>, clientId: string, id: string, session: H, refused: unknown): void {
  const { native, index, closes, now } = parts
  let error = refused
  for (let attempt = 0; attempt < EVICTION_ATTEMPTS; attempt++) {
    const victim = findIdle(native, index, clientId)
    let admitted: Admitted
    try {
      admitted = native.registerEvicting(clientId, id, index.byId.get(id)?.clientId, victim?.slot, victim?.seq, now())
    } catch (thrown) {
      error = fromNative(thrown)
      const code = (error as { code?: unknown }).code
      // A victim that no longer makes room: search again.
      if (victim !== undefined && (code === 'ERR_SESSION_LIMIT' || code === 'ERR_CLIENT_SESSION_LIMIT')) continue
      throw error
    }
    // The victim leaves the index before the new session takes its slot (it
    // may be given the same one), and before the victim's close runs.
    const evicted =
      admitted.evictedSlot === undefined || admitted.evictedSlot === null
        ? undefined
        : index.apply([admitted.evictedSlot])[0]
    index.add(admitted.slot, id, clientId, session)
    if (admitted.evictedTicket !== undefined && admitted.evictedTicket !== null) {
      const batch = closes.batch(() => {}, false, false)
      closes.enqueue(batch, new Float64Array([admitted.evictedTicket]), [evicted])
      closes.seal(batch)
      closes.pump()
    }
    return
  }
  throw error
}

/**
 * The least recently active registration the core offers for eviction whose
 * session says it is not running. Each batch resumes after the last
 * candidate of the one before, so the search is linear in the sessions it
 * asks; it asks each session about once (a callback that removes the
 * cursor's session makes the next batch start over, so the asking is
 * bounded too).
 */
function findIdle<H>(
  native: NativeRegistry,
  index: SessionIndex<H>,
  clientId: string,
): { slot: number; seq: number } | undefined {
  let afterSlot: number | undefined
  let afterSeq: number | undefined
  for (let budget = index.byId.size + EVICTION_BATCH; budget > 0; budget -= EVICTION_BATCH) {
    const candidates = native.evictionCandidates(clientId, afterSlot, afterSeq, EVICTION_BATCH, index.lookups)
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

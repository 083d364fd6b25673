// Carrying out the closes the core ordered, and settling everyone who waits
// on them.
//
// `unregister` starts its one close at once. Bulk cleanups queue their
// handles; a pump starts them in bursts, no more running at once than the
// policy allows, in slices of a few milliseconds that yield to the event
// loop, so closing ten thousand sessions never stalls the process.
//
// Every close ends in exactly one report to the core, whatever `close()`
// does (returns, throws, rejects, never settles, settles twice): the core
// answers only the first report of a ticket.

import { nityError } from './errors'
import type { CloseHooks } from './close_hooks'
import type { NativeRegistry } from './native'
import { afterPromiseJobs, monotonic, nextTurn, SLICE_MS, type Time } from './time'
import type { NitySessionCloseReason } from './types'

/** Closes started per burst, between looks at the clock and the capacity. */
const BURST = 32

type Outcome = 'closed' | 'failed' | 'timedOut'

/** A bulk cleanup: resolves with how many sessions it removed once all their closes ended. */
export class Batch {
  /** Members whose close has not ended. */
  remaining = 0
  /** Members so far. */
  removed = 0
  /** More members may join (a stale scan in progress). */
  open: boolean

  constructor(
    readonly done: (removed: number) => void,
    open: boolean,
  ) {
    this.open = open
  }
}

interface Pending {
  /** The `unregister` that closed the session: rejects with the handle's error. */
  caller?: { resolve: () => void; reject: (error: unknown) => void }
  batch?: Batch
  /** `unregister` calls that found the session already closing. */
  bystanders?: Array<() => void>
}

interface Queued {
  ticket: number
  handle: unknown
}

/** Calls `handle.close()` as a method and reports how it ends, once or more. */
function startClose(handle: unknown, report: (fulfilled: boolean, value: unknown) => void): void {
  try {
    const close = (handle as { close?: unknown }).close
    if (typeof close !== 'function') {
      throw nityError('ERR_INVALID_SESSION', 'session.close is not a function any more; the session was removed unclosed')
    }
    const result: unknown = close.call(handle)
    if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
      const then = (result as { then?: unknown }).then
      if (typeof then === 'function') {
        then.call(
          result,
          () => report(true, undefined),
          (error: unknown) => report(false, error),
        )
        return
      }
    }
  } catch (error) {
    report(false, error)
    return
  }
  report(true, undefined)
}

export class CloseQueue {
  private readonly pending = new Map<number, Pending>()
  private queue: Queued[] = []
  private queueHead = 0
  private pumping = false
  private pumpScheduled = false
  /** When the current slice of bulk work began (monotonic ms). */
  private sliceStarted = -Infinity
  /** Close deadlines in the order they were set, as two columns from `deadlineHead` on. */
  private deadlineAt: number[] = []
  private deadlineTicket: number[] = []
  private deadlineHead = 0
  private deadlineTimer: unknown = undefined

  constructor(
    private readonly native: NativeRegistry,
    private readonly time: Time,
    private readonly hooks: CloseHooks,
    private readonly closeTimeoutMs: number,
  ) {}

  /** Starts one close now and returns the promise of the `unregister` that ordered it. */
  closeNow(ticket: number, handle: unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.set(ticket, { caller: { resolve, reject } })
      this.native.startCloses(new Float64Array([ticket]), this.time.now())
      startClose(handle, (fulfilled, value) => this.report(ticket, fulfilled, value))
      // A close that settled at once needs no deadline.
      if (this.pending.has(ticket)) this.watchDeadline(ticket)
    })
  }

  /** A promise that resolves when the close of `ticket` ends, however it ends. */
  whenClosed(ticket: number): Promise<void> {
    const pending = this.pending.get(ticket)
    if (pending === undefined) return Promise.resolve()
    return new Promise<void>((resolve) => {
      ;(pending.bystanders ??= []).push(resolve)
    })
  }

  /** A bulk cleanup's batch; `open` batches take members until `seal`. */
  batch(done: (removed: number) => void, open: boolean): Batch {
    return new Batch(done, open)
  }

  /**
   * Queues closes of `batch`'s members without starting any (no user code
   * runs), then starts what the current slice allows. `handles[i]` is
   * closed and reported with `tickets[i]`.
   */
  enqueue(batch: Batch, tickets: Float64Array, handles: unknown[]): void {
    batch.remaining += tickets.length
    batch.removed += tickets.length
    for (let i = 0; i < tickets.length; i++) {
      const ticket = tickets[i]!
      this.pending.set(ticket, { batch })
      this.queue.push({ ticket, handle: handles[i] })
    }
  }

  /** No more members join `batch`; it settles once they have all ended. */
  seal(batch: Batch): void {
    batch.open = false
    this.finishBatchIfDone(batch)
  }

  private finishBatchIfDone(batch: Batch): void {
    if (!batch.open && batch.remaining === 0) {
      batch.remaining = -1 // settled: never again
      batch.done(batch.removed)
    }
  }

  /**
   * Starts queued closes in bursts until the queue is empty, the slice that
   * began at `sliceStarted` is spent, or the concurrency bound is reached;
   * then carries on in a later turn (or, at the bound, when a close ends).
   * A `close()` that queues more closes leaves them to the pump running.
   */
  pump(sliceStarted = monotonic()): void {
    if (this.pumping) return
    this.pumping = true
    this.sliceStarted = sliceStarted
    try {
      for (;;) {
        const waiting = this.queue.length - this.queueHead
        if (waiting === 0 || monotonic() - sliceStarted >= SLICE_MS) break
        const burst = Math.min(waiting, BURST, this.native.closeCapacity)
        if (burst === 0) break
        const started = this.queue.slice(this.queueHead, this.queueHead + burst)
        this.queueHead += burst
        const tickets = new Float64Array(started.map((close) => close.ticket))
        this.native.startCloses(tickets, this.time.now())
        for (const { ticket, handle } of started) {
          startClose(handle, (fulfilled, value) => this.report(ticket, fulfilled, value))
          if (this.pending.has(ticket)) this.watchDeadline(ticket)
        }
      }
      if (this.queueHead === this.queue.length) {
        this.queue = []
        this.queueHead = 0
      }
    } finally {
      this.pumping = false
    }
    if (this.queueHead < this.queue.length && this.native.closeCapacity > 0 && !this.pumpScheduled) {
      this.pumpScheduled = true
      nextTurn(() => {
        this.pumpScheduled = false
        this.pump()
      })
    }
  }

  private report(ticket: number, fulfilled: boolean, value: unknown): void {
    this.finish(ticket, fulfilled ? 'closed' : 'failed', value)
  }

  /** Ends a close: tells the core, the close hooks and whoever waits. Only the first end counts. */
  private finish(ticket: number, outcome: Outcome, error: unknown): void {
    const pending = this.pending.get(ticket)
    if (pending === undefined) return
    this.pending.delete(ticket)
    const report = this.native.settle(ticket, outcome, this.time.now())
    if (report !== undefined && report !== null && !this.hooks.empty) {
      const failure = outcome === 'closed' ? undefined : { error, timedOut: outcome === 'timedOut' }
      this.hooks.deliver(
        report.sessionId,
        report.clientId,
        report.reason as NitySessionCloseReason,
        report.durationMs,
        failure,
      )
    }
    if (pending.caller !== undefined) {
      if (outcome === 'closed') pending.caller.resolve()
      else pending.caller.reject(error)
    }
    if (pending.batch !== undefined) {
      pending.batch.remaining -= 1
      this.finishBatchIfDone(pending.batch)
    }
    for (const resolve of pending.bystanders ?? []) resolve()
    // A close ending frees room under the concurrency bound: refill once the
    // promise jobs queued so far have run (closes that end together refill
    // in one burst), in this turn while the slice lasts, else in the next.
    if (this.queueHead < this.queue.length && !this.pumpScheduled) {
      this.pumpScheduled = true
      const inSlice = monotonic() - this.sliceStarted < SLICE_MS
      const refill = (): void => {
        this.pumpScheduled = false
        this.pump(inSlice ? this.sliceStarted : monotonic())
      }
      if (inSlice) afterPromiseJobs(refill)
      else nextTurn(refill)
    }
  }

  private watchDeadline(ticket: number): void {
    this.pruneDeadlines()
    this.deadlineAt.push(this.time.now() + this.closeTimeoutMs)
    this.deadlineTicket.push(ticket)
    if (this.deadlineTimer === undefined) this.armDeadlines()
  }

  /** Drops the deadlines of closes that ended from the front, and compacts. */
  private pruneDeadlines(): void {
    while (this.deadlineHead < this.deadlineTicket.length && !this.pending.has(this.deadlineTicket[this.deadlineHead]!)) {
      this.deadlineHead += 1
    }
    if (this.deadlineHead === this.deadlineTicket.length) {
      this.deadlineAt = []
      this.deadlineTicket = []
      this.deadlineHead = 0
    } else if (this.deadlineHead > 1024 && this.deadlineHead * 2 > this.deadlineTicket.length) {
      this.deadlineAt = this.deadlineAt.slice(this.deadlineHead)
      this.deadlineTicket = this.deadlineTicket.slice(this.deadlineHead)
      this.deadlineHead = 0
    }
  }

  private armDeadlines(): void {
    this.pruneDeadlines()
    if (this.deadlineHead === this.deadlineTicket.length) return
    const at = this.deadlineAt[this.deadlineHead]!
    const self = new WeakRef(this)
    this.deadlineTimer = this.time.setTimer(
      () => {
        const queue = self.deref()
        if (queue !== undefined) queue.sweepDeadlines()
      },
      Math.max(0, at - this.time.now()),
    )
  }

  private sweepDeadlines(): void {
    this.deadlineTimer = undefined
    const now = this.time.now()
    while (this.deadlineHead < this.deadlineTicket.length) {
      const at = this.deadlineAt[this.deadlineHead]!
      const ticket = this.deadlineTicket[this.deadlineHead]!
      if (at > now) break
      this.deadlineHead += 1
      if (this.pending.has(ticket)) {
        const error = nityError(
          'ERR_CLOSE_TIMEOUT',
          `the session's close() did not settle within ${this.closeTimeoutMs} ms; the registry gave up on it`,
        )
        this.finish(ticket, 'timedOut', error)
      }
    }
    this.armDeadlines()
  }
}

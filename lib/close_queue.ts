// Carrying out the closes the core ordered, and settling everyone who waits
// on them.
//
// `unregister` starts its one close at once. Bulk cleanups queue their
// handles; a pump starts them in bursts, no more running at once than the
// policy allows, in slices of a few milliseconds that yield to the event
// loop, so closing ten thousand sessions never stalls the process.
//
// Every close ends exactly once, whatever `close()` does (returns, throws,
// rejects, never settles, settles twice): only its first end counts, here
// and in the core. Ends are reported to the core in batches, once the
// promise jobs queued so far have run, so closes that end together cross
// into native code once.
//
// A close that runs past its deadline is given up on by one timer, which
// holds this queue strongly: whoever awaits the close may hold nothing but
// its promise, and a garbage collection must not take the only way to
// settle it. While a close that someone awaits is pending, that timer also
// keeps the process alive, so an awaited `unregister()` or `dispose()`
// settles before the process can exit; closes nobody awaits (the automatic
// cleanup's, evictions') never keep it alive.

import { nityError } from './errors'
import type { CloseHooks } from './close_hooks'
import { CloseEnd, type NativeRegistry } from './native'
import { afterPromiseJobs, MAX_DELAY_MS, monotonic, nextTurn, SLICE_MS, type Time } from './time'
import type { NitySessionCloseReason } from './types'

/** Closes started per burst, between looks at the clock and the capacity. */
const BURST = 32

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
    /** Someone awaits the batch's promise. */
    readonly awaited: boolean,
  ) {
    this.open = open
  }
}

/** The session a close is of, as the index had it. */
export interface Closing {
  readonly handle: unknown
  readonly id: string
  readonly clientId: string
}

interface Pending {
  readonly sessionId: string
  readonly clientId: string
  /** Its end is known and waits to be reported. */
  ended: boolean
  /** Someone awaits its end (a caller, an awaited batch, a bystander). */
  awaited: boolean
  /** The `unregister` that closed the session: rejects with the handle's error. */
  caller?: { resolve: () => void; reject: (error: unknown) => void }
  batch?: Batch
  /** `unregister` calls that found the session already closing. */
  bystanders?: Array<() => void>
}

/**
 * The one deadline timer. It reaches the queue only while a close it may
 * give up on is running (`queue` is cleared once none is), so a timer left
 * armed after the closes ended holds nothing and fires to no effect.
 */
interface DeadlineTimer {
  handle: unknown
  queue: CloseQueue | undefined
  fired: boolean
  /** Whether it keeps the process alive. */
  keepsAlive: boolean
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
      throw nityError(
        'ERR_INVALID_SESSION',
        'session.close is not a function any more; the session was removed unclosed',
      )
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
  /** The latest close in flight of each session id, for an `unregister` that finds it closing. */
  private readonly closingIds = new Map<string, number>()
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
  private deadline: DeadlineTimer | undefined = undefined
  /** Pending closes someone awaits. */
  private awaitedPending = 0
  /** Ends not reported to the core yet, as columns. */
  private endedTickets: number[] = []
  private endedHow: CloseEnd[] = []
  private endedErrors: unknown[] = []
  private reportScheduled = false

  constructor(
    private readonly native: NativeRegistry,
    private readonly time: Time,
    private readonly hooks: CloseHooks,
    private readonly closeTimeoutMs: number,
  ) {}

  /**
   * Calls `close()` of a session whose close the core has ordered and
   * counted as started, and returns the promise of the `unregister` that
   * ordered it.
   */
  closeNow(ticket: number, session: Closing): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.track(ticket, session, { ended: false, awaited: true, caller: { resolve, reject } })
      startClose(session.handle, (fulfilled, value) =>
        this.end(ticket, fulfilled ? CloseEnd.Closed : CloseEnd.Failed, value),
      )
      // A close that settled at once is told at once: its close event comes
      // before `unregister` returns.
      if (this.pending.get(ticket)?.ended === true) this.reportEnds()
      else this.watchDeadline(ticket)
    })
  }

  /**
   * A promise that resolves when the close in flight of the session `id`
   * ends, however it ends; at once when none is.
   */
  whenClosed(id: string): Promise<void> {
    const ticket = this.closingIds.get(id)
    const pending = ticket === undefined ? undefined : this.pending.get(ticket)
    if (pending === undefined) return Promise.resolve()
    if (!pending.awaited) {
      pending.awaited = true
      this.awaitedPending += 1
      this.updateKeepAlive()
    }
    const bystanders = pending.bystanders ?? []
    pending.bystanders = bystanders
    return new Promise<void>((resolve) => {
      bystanders.push(resolve)
    })
  }

  /**
   * A bulk cleanup's batch; `open` batches take members until `seal`.
   * `awaited`: someone awaits `done` (a cleanup call's promise), so its
   * closes keep the process alive until they end or time out.
   */
  batch(done: (removed: number) => void, open: boolean, awaited: boolean): Batch {
    return new Batch(done, open, awaited)
  }

  private track(ticket: number, session: Closing | undefined, state: Omit<Pending, 'sessionId' | 'clientId'>): void {
    const sessionId = session?.id ?? ''
    this.pending.set(ticket, { sessionId, clientId: session?.clientId ?? '', ...state })
    this.closingIds.set(sessionId, ticket)
    if (state.awaited) this.awaitedPending += 1
  }

  /**
   * Queues closes of `batch`'s members without starting any (no user code
   * runs), then starts what the current slice allows. `sessions[i]` is
   * closed and reported with `tickets[i]`.
   */
  enqueue(batch: Batch, tickets: Float64Array, sessions: ReadonlyArray<Closing | undefined>): void {
    batch.remaining += tickets.length
    batch.removed += tickets.length
    for (let i = 0; i < tickets.length; i++) {
      const ticket = tickets[i]!
      const session = sessions[i]
      this.track(ticket, session, { ended: false, awaited: batch.awaited, batch })
      this.queue.push({ ticket, handle: session?.handle })
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
          startClose(handle, (fulfilled, value) =>
            this.end(ticket, fulfilled ? CloseEnd.Closed : CloseEnd.Failed, value),
          )
          this.watchIfRunning(ticket)
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

  /** A close that settled at once needs no deadline. */
  private watchIfRunning(ticket: number): void {
    const pending = this.pending.get(ticket)
    if (pending !== undefined && !pending.ended) this.watchDeadline(ticket)
  }

  /** Notes how a close ended; only its first end counts. */
  private end(ticket: number, how: CloseEnd, error: unknown): void {
    const pending = this.pending.get(ticket)
    if (pending === undefined || pending.ended) return
    pending.ended = true
    this.endedTickets.push(ticket)
    this.endedHow.push(how)
    this.endedErrors.push(error)
    if (!this.reportScheduled) {
      this.reportScheduled = true
      afterPromiseJobs(() => this.reportEnds())
    }
  }

  /** Tells the core, the close hooks and whoever waits how the closes ended since the last call. */
  private reportEnds(): void {
    this.reportScheduled = false
    if (this.endedTickets.length === 0) return
    const tickets = this.endedTickets
    const how = this.endedHow
    const errors = this.endedErrors
    this.endedTickets = []
    this.endedHow = []
    this.endedErrors = []
    const ticketColumn = new Float64Array(tickets)
    const howColumn = new Uint8Array(how)
    const now = this.time.now()
    const reports = this.hooks.empty ? undefined : this.native.settleReported(ticketColumn, howColumn, now)
    if (reports === undefined) this.native.settle(ticketColumn, howColumn, now)
    for (let i = 0; i < tickets.length; i++) {
      const ticket = tickets[i]!
      const pending = this.pending.get(ticket)
      if (pending === undefined) continue
      this.pending.delete(ticket)
      if (this.closingIds.get(pending.sessionId) === ticket) this.closingIds.delete(pending.sessionId)
      if (pending.awaited) this.awaitedPending -= 1
      const closed = how[i] === CloseEnd.Closed
      const report = reports?.[i]
      if (report !== undefined && report !== null) {
        const failure = closed ? undefined : { error: errors[i], timedOut: how[i] === CloseEnd.TimedOut }
        this.hooks.deliver(
          pending.sessionId,
          pending.clientId,
          report.reason as NitySessionCloseReason,
          report.durationMs,
          failure,
        )
      }
      if (pending.caller !== undefined) {
        if (closed) pending.caller.resolve()
        else pending.caller.reject(errors[i])
      }
      if (pending.batch !== undefined) {
        pending.batch.remaining -= 1
        this.finishBatchIfDone(pending.batch)
      }
      for (const resolve of pending.bystanders ?? []) resolve()
    }
    this.releaseDeadline()
    // Ended closes free room under the concurrency bound: refill in this
    // turn while the slice lasts, else in the next.
    if (this.queueHead < this.queue.length && !this.pumpScheduled) {
      if (monotonic() - this.sliceStarted < SLICE_MS) {
        this.pump(this.sliceStarted)
      } else {
        this.pumpScheduled = true
        nextTurn(() => {
          this.pumpScheduled = false
          this.pump()
        })
      }
    }
  }

  /**
   * Once no close is running the deadline timer lets go of the queue, and
   * once none is awaited it stops keeping the process alive. It is not
   * cleared: it fires once to no effect (closes end far more often than
   * their deadlines come, and a timer per close would cost more).
   */
  private releaseDeadline(): void {
    const deadline = this.deadline
    if (deadline === undefined) return
    this.pruneDeadlines()
    if (this.deadlineHead === this.deadlineTicket.length) deadline.queue = undefined
    this.updateKeepAlive()
  }

  /** The deadline timer keeps the process alive exactly while a close someone awaits is pending. */
  private updateKeepAlive(): void {
    const deadline = this.deadline
    const keepAlive = this.awaitedPending > 0
    if (deadline === undefined || deadline.fired || keepAlive === deadline.keepsAlive) return
    this.time.keepAlive(deadline.handle, keepAlive)
    deadline.keepsAlive = keepAlive
  }

  private watchDeadline(ticket: number): void {
    this.pruneDeadlines()
    this.deadlineAt.push(this.time.now() + this.closeTimeoutMs)
    this.deadlineTicket.push(ticket)
    const deadline = this.deadline
    if (deadline === undefined || deadline.fired) {
      this.armDeadlines()
    } else {
      deadline.queue = this
      this.updateKeepAlive()
    }
  }

  /** Drops the deadlines of closes that ended from the front, and compacts. */
  private pruneDeadlines(): void {
    while (
      this.deadlineHead < this.deadlineTicket.length &&
      this.pending.get(this.deadlineTicket[this.deadlineHead]!)?.ended !== false
    ) {
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

  /**
   * Sets the one deadline timer for the earliest close still running, or
   * clears it when none is. It holds this queue strongly (see the header).
   */
  private armDeadlines(): void {
    this.pruneDeadlines()
    if (this.deadline !== undefined && !this.deadline.fired) this.time.clearTimer(this.deadline.handle)
    this.deadline = undefined
    if (this.deadlineHead === this.deadlineTicket.length) return
    const at = this.deadlineAt[this.deadlineHead]!
    const now = this.time.now()
    // A deadline further away than a timer can wait is reached in steps.
    const reachable = at - now <= MAX_DELAY_MS
    const firedFor = reachable ? at : now + MAX_DELAY_MS
    const deadline: DeadlineTimer = {
      handle: undefined,
      queue: this,
      fired: false,
      keepsAlive: this.awaitedPending > 0,
    }
    deadline.handle = this.time.setTimer(
      () => {
        deadline.fired = true
        deadline.queue?.sweepDeadlines(firedFor)
      },
      reachable ? Math.max(0, at - now) : MAX_DELAY_MS,
      deadline.keepsAlive,
    )
    this.deadline = deadline
  }

  /** Gives up on the closes due by `firedFor`, the time the timer was set for, or by now. */
  private sweepDeadlines(firedFor: number): void {
    this.deadline = undefined
    const now = Math.max(this.time.now(), firedFor)
    while (this.deadlineHead < this.deadlineTicket.length) {
      const at = this.deadlineAt[this.deadlineHead]!
      const ticket = this.deadlineTicket[this.deadlineHead]!
      if (at > now) break
      this.deadlineHead += 1
      const pending = this.pending.get(ticket)
      if (pending !== undefined && !pending.ended) {
        const error = nityError(
          'ERR_CLOSE_TIMEOUT',
          `the session's close() did not settle within ${this.closeTimeoutMs} ms; the registry gave up on it`,
        )
        this.end(ticket, CloseEnd.TimedOut, error)
      }
    }
    this.armDeadlines()
  }
}

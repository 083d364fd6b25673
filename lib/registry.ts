// `NitySessionRegistry`: the documented API and the options beyond it. It
// holds the session handles and does the JavaScript mechanics (calling
// `close()`, `getHealth()` and `isRunning()`, making promises, running
// timers, slicing bulk work); the core, through the native layer, decides
// what is registered, what a cleanup takes and what the limits allow.

import { AutoCleanup } from './auto_cleanup'
import { CloseHooks } from './close_hooks'
import { Cluster, type LocalRegistry } from './cluster'
import { CloseQueue, type Batch } from './close_queue'
import { callNative, fromNative, invalidArgument, nityError } from './errors'
import { registerEvicting, type Parts } from './eviction'
import { readListOptions } from './list_options'
import { LookupTime } from './lookup_time'
import { NativeRegistry, type Removal } from './native'
import { readDuration, readOptions, type Options } from './options'
import { SessionIndex, type Entry } from './session_index'
import { scanStale } from './stale_scan'
import { registryTime, type Time } from './time'
import type {
  NityCluster,
  NitySessionCloseReason,
  NitySessionClosedEvent,
  NitySessionHandle,
  NitySessionLike,
  NitySessionInfo,
  NitySessionListOptions,
  NitySessionPage,
  NitySessionRegistryMetrics,
  NitySessionRegistryOptions,
  NitySessionRegistryStats,
} from './types'

/** A record whose keys are whatever strings come, `__proto__` included, as own data properties. */
function record(pairs: Iterable<readonly [string, number]>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, value] of pairs) {
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true })
    } else {
      out[key] = value
    }
  }
  return out
}

/**
 * Tracks the sessions of every connected client, finds them again, and
 * closes them when their client leaves or they go stale.
 *
 * Handles are kept as given: lookups return the very objects that were
 * registered. A session is removed from the registry before its `close()`
 * runs, so racing calls close it exactly once, and a `close()` that throws,
 * rejects or calls back into the registry never leaves it behind.
 */
export class NitySessionRegistry<H extends NitySessionLike = NitySessionHandle> {
  readonly #native: NativeRegistry
  readonly #index: SessionIndex<H>
  readonly #time: Time
  readonly #hooks = new CloseHooks()
  readonly #closes: CloseQueue
  readonly #options: Options
  readonly #autoCleanup: AutoCleanup
  readonly #lookupTime: LookupTime
  /**
   * The fleet-wide view, with the `cluster` option; `undefined` without it
   * (and then nothing touches the network).
   */
  readonly cluster: NityCluster<H> | undefined

  /** Creates an empty registry; see `NitySessionRegistryOptions` for `options`. */
  constructor(options?: NitySessionRegistryOptions) {
    const read = readOptions(options)
    this.#options = read
    this.#time = registryTime(read.clock)
    this.#native = new NativeRegistry(
      {
        maxSessions: read.maxSessions,
        maxSessionsPerClient: read.maxSessionsPerClient,
        evictIdle: read.evictIdle,
        idleTimeoutMs: read.idleTimeoutMs,
        maxConcurrentCloses: read.maxConcurrentCloses,
      },
      // The cluster's change feed names sessions: only then does the core keep their ids.
      read.cluster !== undefined,
    )
    this.#index = new SessionIndex<H>()
    this.#closes = new CloseQueue(this.#native, this.#time, this.#hooks, read.closeTimeoutMs)
    if (read.onSessionClosed !== undefined) this.#hooks.add(read.onSessionClosed)
    this.#lookupTime = new LookupTime(this.#time, read.clock !== undefined)
    this.#autoCleanup = new AutoCleanup(this.#time, (done) => this.#scan(this.#closes.batch(done, true, false)))
    if (read.cleanupIntervalMs !== undefined) this.#autoCleanup.start(read.cleanupIntervalMs)
    this.cluster =
      read.cluster === undefined
        ? undefined
        : new Cluster<H>(read.cluster, this.#localView(), (native) => this.#native.attachCluster(native))
  }

  /** What the cluster may do with this registry. */
  #localView(): LocalRegistry<H> {
    return {
      register: (clientId, session) => this.register(clientId, session),
      now: () => this.#time.now(),
      holds: (sessionId) => this.#index.byId.has(sessionId),
      unregister: (sessionId) => this.unregister(sessionId),
      cleanupClient: (clientId) => this.cleanupClient(clientId),
      closeRemote: (sessionId) => {
        const closing = this.#unregister(sessionId, 'remote')
        return closing === undefined
          ? Promise.resolve(0)
          : closing.then(
              () => 1,
              () => 1,
            )
      },
      cleanupRemote: (clientId) => this.#closeInBulk(this.#native.cleanupClient(clientId, true, this.#time.now())),
      reseed: () => this.#native.reseedCluster(),
      closeConflicting: (sessionIds) => {
        for (const id of sessionIds) void this.#unregister(id, 'conflict')?.catch(() => {})
      },
    }
  }

  /**
   * Registers a session under a client. A client may own many sessions.
   *
   * Registering the same handle again under the same client does nothing;
   * any other reuse of a registered id throws `ERR_SESSION_ALREADY_REGISTERED`
   * and keeps the first registration. Invalid arguments throw a `TypeError`.
   * A call that throws changes nothing.
   */
  register(clientId: string, session: H): void {
    if (typeof clientId !== 'string') {
      throw invalidArgument('ERR_INVALID_CLIENT_ID', 'clientId', clientId, 'a non-empty string')
    }
    if (session === null || typeof session !== 'object') {
      throw invalidArgument('ERR_INVALID_SESSION', 'session', session, 'an object with an id and a close() method')
    }
    const id: unknown = session.id
    if (typeof id !== 'string') {
      throw invalidArgument('ERR_INVALID_SESSION', 'session.id', id, 'a non-empty string')
    }
    if (id !== '' && clientId !== '' && typeof session.close !== 'function') {
      throw invalidArgument('ERR_INVALID_SESSION', 'session.close', session.close, 'a function')
    }
    const existing = this.#index.byId.get(id)
    // Registering the very same handle under the same client again is a no-op.
    if (existing !== undefined && existing.handle === session && existing.clientId === clientId) return
    let slot: number
    try {
      slot = this.#native.register(clientId, id, existing?.clientId, this.#time.now())
    } catch (thrown) {
      const error = fromNative(thrown) as Error & { code?: string }
      if (
        (error.code === 'ERR_SESSION_LIMIT' || error.code === 'ERR_CLIENT_SESSION_LIMIT') &&
        this.#options.evictIdle
      ) {
        registerEvicting(this.#evictionParts(), clientId, id, session, error)
        return
      }
      throw error
    }
    this.#index.add(slot, id, clientId, session)
  }

  /**
   * Removes a session and closes it. Resolves once its `close()` has
   * settled and rejects with the handle's error if `close()` fails (the
   * session is removed either way). An unknown id resolves at once; the id
   * of a session still closing resolves when that close ends.
   */
  unregister(sessionId: string): Promise<void> {
    if (typeof sessionId !== 'string') {
      return Promise.reject(invalidArgument('ERR_INVALID_SESSION_ID', 'sessionId', sessionId, 'a string'))
    }
    // Not registered here: maybe its close is still in flight.
    return this.#unregister(sessionId, 'unregister') ?? this.#closes.whenClosed(sessionId)
  }

  /** Removes a registered session (the core orders it) and closes it; `undefined` when it is not registered. */
  #unregister(sessionId: string, why: Removal): Promise<void> | undefined {
    const entry = this.#index.byId.get(sessionId)
    if (entry === undefined) return undefined
    const ticket = this.#native.unregister(entry.slot, why, this.#time.now())
    if (ticket === undefined || ticket === null) return undefined
    const [removed] = this.#index.apply([entry.slot])
    return this.#closes.closeNow(ticket, removed ?? entry)
  }

  /**
   * Closes every session of a client concurrently and resolves with how
   * many were removed (0 for an unknown client). Failed closes do not
   * reject: they are reported to the close hooks.
   */
  cleanupClient(clientId: string): Promise<number> {
    if (typeof clientId !== 'string') {
      return Promise.reject(invalidArgument('ERR_INVALID_CLIENT_ID', 'clientId', clientId, 'a string'))
    }
    return this.#closeInBulk(this.#native.cleanupClient(clientId, false, this.#time.now()))
  }

  /** The client's sessions in registration order, as a new array (empty when the client has none). */
  getClientSessions(clientId: string): H[] {
    if (typeof clientId !== 'string') {
      throw invalidArgument('ERR_INVALID_CLIENT_ID', 'clientId', clientId, 'a string')
    }
    const client = this.#index.byClient.get(clientId)
    const found: H[] = []
    if (client === undefined) return found
    // Handing the sessions out counts as their activity.
    const now = this.#lookupTime.now()
    const lookups = this.#index.lookups
    for (const entry of client) {
      found.push(entry.handle)
      // A clock that stepped back never makes a lookup look older.
      if (lookups[entry.slot]! < now) lookups[entry.slot] = now
    }
    return found
  }

  /** The session registered under this id, or `undefined`. */
  getSession(sessionId: string): H | undefined {
    if (typeof sessionId !== 'string') {
      throw invalidArgument('ERR_INVALID_SESSION_ID', 'sessionId', sessionId, 'a string')
    }
    const entry = this.#index.byId.get(sessionId)
    if (entry === undefined) return undefined
    // Handing the session out counts as its activity.
    const now = this.#lookupTime.now()
    const lookups = this.#index.lookups
    // A clock that stepped back never makes a lookup look older.
    if (lookups[entry.slot]! < now) lookups[entry.slot] = now
    return entry.handle
  }

  /** `{ totalSessions, activeClients, sessionsByClient }`, counted now. */
  getStats(): NitySessionRegistryStats {
    const byClient = this.#index.byClient
    const sessionsByClient: Record<string, number> = {}
    for (const [client, sessions] of byClient) {
      if (client === '__proto__') {
        Object.defineProperty(sessionsByClient, client, {
          value: sessions.size,
          writable: true,
          enumerable: true,
          configurable: true,
        })
      } else {
        sessionsByClient[client] = sessions.size
      }
    }
    return { totalSessions: this.#index.byId.size, activeClients: byClient.size, sessionsByClient }
  }

  /**
   * Asks every session for its health and closes those that are timed out
   * or in the error state (a `getHealth()` that throws counts as error; a
   * session without `getHealth` is left alone), and, with `idleTimeoutMs`,
   * those idle past it that are not running. Resolves with the number
   * removed; failed closes are reported to the close hooks.
   */
  cleanupStale(): Promise<number> {
    return new Promise<number>((resolve) => {
      this.#scan(this.#closes.batch(resolve, true, true))
    })
  }

  /** Subscribes to close events; returns the function that unsubscribes. */
  onSessionClosed(listener: (event: NitySessionClosedEvent) => void): () => void {
    if (typeof listener !== 'function') {
      throw invalidArgument('ERR_INVALID_LISTENER', 'a close listener', listener, 'a function')
    }
    return this.#hooks.add(listener)
  }

  /** Records activity of a session, for the idle timeout and eviction order; `false` when it is not registered. */
  touch(sessionId: string): boolean {
    if (typeof sessionId !== 'string') {
      throw invalidArgument('ERR_INVALID_SESSION_ID', 'sessionId', sessionId, 'a string')
    }
    const entry = this.#index.byId.get(sessionId)
    if (entry === undefined) return false
    this.#native.touch(entry.slot, this.#time.now())
    return true
  }

  /**
   * Merges numeric metrics into a session's record (a name given again
   * replaces its value); `false` when the session is not registered. Every
   * value must be a finite number, or nothing is merged.
   */
  updateMetrics(sessionId: string, metrics: Record<string, number>): boolean {
    if (typeof sessionId !== 'string') {
      throw invalidArgument('ERR_INVALID_SESSION_ID', 'sessionId', sessionId, 'a string')
    }
    if (metrics === null || typeof metrics !== 'object') {
      throw invalidArgument('ERR_INVALID_METRICS', 'metrics', metrics, 'an object of numbers')
    }
    const entry = this.#index.byId.get(sessionId)
    const names = Object.keys(metrics)
    const values = new Float64Array(names.length)
    names.forEach((name, i) => {
      const value: unknown = metrics[name]
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw invalidArgument('ERR_INVALID_METRICS', `metric '${name}'`, value, 'a finite number')
      }
      values[i] = value
    })
    return entry !== undefined && this.#native.updateMetrics(entry.slot, names, values)
  }

  /** `{ sessionId, clientId, registeredAt, lastActivityAt, metrics }` of a registered session, or `undefined`. Not activity. */
  getSessionInfo(sessionId: string): NitySessionInfo | undefined {
    if (typeof sessionId !== 'string') {
      throw invalidArgument('ERR_INVALID_SESSION_ID', 'sessionId', sessionId, 'a string')
    }
    const entry = this.#index.byId.get(sessionId)
    if (entry === undefined) return undefined
    const info = this.#native.sessionInfo(entry.slot, this.#index.lookups)
    return info === undefined || info === null ? undefined : sessionInfo(entry, info)
  }

  /** Aggregate metrics since the registry was created, kept up to date as sessions come and go. */
  getMetrics(): NitySessionRegistryMetrics {
    const metrics = this.#native.metrics()
    return {
      sessionsRegistered: metrics.sessionsRegistered,
      sessionsClosed: metrics.sessionsClosed,
      closesByReason: record(metrics.closesByReason.map((r) => [r.name, r.value] as const)) as Record<
        NitySessionCloseReason,
        number
      >,
      closeFailures: metrics.closeFailures,
      closeTimeouts: metrics.closeTimeouts,
      averageCloseDurationMs: metrics.averageCloseDurationMs,
      maxCloseDurationMs: metrics.maxCloseDurationMs,
      averageSessionLifetimeMs: metrics.averageSessionLifetimeMs,
      metricTotals: record(metrics.metricTotals.map((m) => [m.name, m.value] as const)),
    }
  }

  /**
   * One page of `getSessionInfo` rows in registration order, all sessions or
   * one client's; pass the returned `next` as `after` for the next page.
   */
  list(options?: NitySessionListOptions): NitySessionPage {
    const { clientId, after, limit } = readListOptions(options)
    const page = callNative(() => this.#native.list(clientId, after, limit, this.#index.lookups))
    const sessions: NitySessionInfo[] = []
    for (const row of page.sessions) {
      const entry = this.#index.at(row.slot)
      if (entry !== undefined) sessions.push(sessionInfo(entry, row))
    }
    return page.next === undefined || page.next === null ? { sessions } : { sessions, next: page.next }
  }

  /** Closes every session (reason `'shutdown'`) under the close deadline and the concurrency bound; resolves with how many were removed. */
  closeAll(): Promise<number> {
    return this.#closeInBulk(this.#native.closeAll(this.#time.now()))
  }

  /**
   * `closeAll()`, and after it the registry takes no more sessions
   * (`register` throws `ERR_REGISTRY_DISPOSED`) and its automatic cleanup
   * stops; in cluster mode the node then leaves the fleet. Calling it again
   * resolves with 0.
   */
  async dispose(): Promise<number> {
    this.#native.dispose()
    this.stopAutoCleanup()
    const closed = await this.closeAll()
    if (this.cluster !== undefined) {
      // Leaving removes this node's records at once; other nodes hear of it.
      await this.cluster.leave().catch(() => {})
      this.#native.detachCluster()
    }
    return closed
  }

  /**
   * Runs the stale cleanup every `intervalMs` (default: the
   * `cleanupIntervalMs` option), each run starting `intervalMs` after the
   * previous one finished. Restarting changes the interval.
   */
  startAutoCleanup(intervalMs?: number): void {
    if (this.#native.disposed) {
      throw nityError('ERR_REGISTRY_DISPOSED', 'the registry is disposed and takes no more sessions')
    }
    const fail = (message: string): ReturnType<typeof nityError> => nityError('ERR_INVALID_ARG', message)
    const interval =
      readDuration(intervalMs, 'intervalMs', fail) ?? this.#autoCleanup.interval ?? this.#options.cleanupIntervalMs
    if (interval === undefined) {
      throw fail('startAutoCleanup() needs an interval: pass intervalMs or set the cleanupIntervalMs option')
    }
    this.#autoCleanup.start(interval)
  }

  /** Stops the automatic stale cleanup. Idempotent. */
  stopAutoCleanup(): void {
    this.#autoCleanup.stop()
  }

  #scan(batch: Batch): void {
    scanStale(this.#native, this.#index, this.#closes, this.#time, this.#options.idleTimeoutMs !== undefined, batch)
  }

  /** Closes what a bulk cleanup removed; a promise for the count. */
  #closeInBulk(orders: { tickets: Float64Array; slots: Uint32Array }): Promise<number> {
    if (orders.tickets.length === 0) return Promise.resolve(0)
    // Every handle leaves the index before any close() runs, because a
    // close() that registers a new session may be handed one of these slots.
    const removed = this.#index.apply(orders.slots)
    return new Promise<number>((resolve) => {
      const batch = this.#closes.batch(resolve, false, true)
      this.#closes.enqueue(batch, orders.tickets, removed)
      this.#closes.seal(batch)
      this.#closes.pump()
    })
  }

  /** What the eviction search works with. */
  #evictionParts(): Parts<H> {
    return {
      native: this.#native,
      index: this.#index,
      closes: this.#closes,
      now: () => this.#time.now(),
    }
  }
}

/** A native session report, with the ids the index holds, as a plain object of this realm. */
function sessionInfo(
  entry: Entry<unknown>,
  info: { registeredAt: number; lastActivityAt: number; metrics: Array<{ name: string; value: number }> },
): NitySessionInfo {
  return {
    sessionId: entry.id,
    clientId: entry.clientId,
    registeredAt: info.registeredAt,
    lastActivityAt: info.lastActivityAt,
    metrics: record(info.metrics.map((m) => [m.name, m.value] as const)),
  }
}

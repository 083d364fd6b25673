// `registry.cluster`: the fleet-wide view of a registry in cluster mode. The
// documented calls stay local and synchronous; the native layer publishes
// their changes to Redis in the background. This file makes the promises
// and objects the user receives, and carries out the closes other nodes ask
// of this one through the registry's own mechanics.

import { describe, fromNative, nityError } from './errors'
import { type ClusterEvent, type ClusterSessionReport, NativeCluster } from './native'
import type { ClusterSettings } from './options'
import { afterRealDelay } from './time'
import type {
  NityCluster,
  NityClusterDiagnostics,
  NityClusterNode,
  NityClusterSessionInfo,
  NityClusterStats,
  NityNodeDownEvent,
  NitySessionLike,
} from './types'

/** What the cluster needs of its registry. */
export interface LocalRegistry<H> {
  /** Registers locally, as `register` does; throws what it throws. */
  register(clientId: string, session: H): void
  /** The registry's time, for registration records. */
  now(): number
  /** Whether this process holds the session. */
  holds(sessionId: string): boolean
  unregister(sessionId: string): Promise<void>
  cleanupClient(clientId: string): Promise<number>
  /** Closes on another node's behalf (close reason `'remote'`); how many were closed. */
  closeRemote(sessionId: string): Promise<number>
  cleanupRemote(clientId: string): Promise<number>
  /** Hands the cluster every session held now, to re-assert (it asked for it). */
  reseed(): void
  /** Closes these sessions (close reason `'conflict'`): another live node holds their ids. */
  closeConflicting(sessionIds: readonly string[]): void
}

/** Calls the native cluster; its errors become the registry's errors of this realm. */
async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (thrown) {
    throw fromNative(thrown)
  }
}

function info(report: ClusterSessionReport): NityClusterSessionInfo {
  return {
    sessionId: report.sessionId,
    clientId: report.clientId,
    nodeId: report.nodeId,
    registeredAt: report.registeredAt,
  }
}

/** A record of counts whose keys are whatever strings come, `__proto__` included. */
function counts(pairs: Array<{ name: string; value: number }>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const { name, value } of pairs) {
    Object.defineProperty(out, name, { value, writable: true, enumerable: true, configurable: true })
  }
  return out
}

export class Cluster<H extends NitySessionLike> implements NityCluster<H> {
  readonly nodeId: string
  readonly #native: NativeCluster
  readonly #settings: ClusterSettings
  readonly #local: LocalRegistry<H>
  /** The latest attempt to connect: until one succeeds, another follows each failure. */
  #connected: Promise<void>
  readonly #attach: (native: NativeCluster) => void
  #left = false
  #listeners: Array<(event: NityNodeDownEvent) => void> = []

  /** Connects at once; `attach` is called with the native cluster once connected. */
  constructor(settings: ClusterSettings, local: LocalRegistry<H>, attach: (native: NativeCluster) => void) {
    this.nodeId = settings.nodeId
    this.#settings = settings
    this.#local = local
    // The listener holds the cluster weakly: a dropped registry is collected
    // with its cluster, whose native part then stops its work.
    const self = new WeakRef(this)
    this.#native = new NativeCluster(
      {
        redis: settings.redis,
        namespace: settings.namespace,
        nodeId: settings.nodeId,
        leaseMs: settings.leaseMs,
        requestTimeoutMs: settings.requestTimeoutMs,
        startedAt: local.now(),
      },
      (event: ClusterEvent) => {
        const cluster = self.deref()
        if (cluster !== undefined) cluster.#receive(event)
      },
    )
    this.#attach = attach
    this.#connected = this.#connect()
  }

  /**
   * Connects; on failure tries again every lease (on the real clock, never
   * keeping the process alive), so a node started while Redis is down joins
   * once it is up.
   */
  #connect(): Promise<void> {
    const attempt = call(() => this.#native.connect()).then(() => {
      if (!this.#left) this.#attach(this.#native)
    })
    // Whoever never asks whether it connected is not told by an unhandled rejection.
    attempt.catch(() => {
      if (this.#left) return
      const self = new WeakRef(this)
      afterRealDelay(() => {
        const cluster = self.deref()
        if (cluster !== undefined && !cluster.#left) cluster.#connected = cluster.#connect()
      }, this.#settings.leaseMs)
    })
    return attempt
  }

  ready(): Promise<void> {
    return this.#connected
  }

  async flush(): Promise<void> {
    await this.#connected
    await call(() => this.#native.flush())
  }

  async getSession(sessionId: string): Promise<NityClusterSessionInfo | undefined> {
    if (typeof sessionId !== 'string') {
      throw nityError('ERR_INVALID_SESSION_ID', `sessionId must be a string, got ${describe(sessionId)}`)
    }
    await this.#connected
    const found = await call(() => this.#native.session(sessionId))
    return found === null || found === undefined ? undefined : info(found)
  }

  async getClientSessions(clientId: string): Promise<NityClusterSessionInfo[]> {
    if (typeof clientId !== 'string') {
      throw nityError('ERR_INVALID_CLIENT_ID', `clientId must be a string, got ${describe(clientId)}`)
    }
    await this.#connected
    const found = await call(() => this.#native.clientSessions(clientId))
    return Array.from(found, info)
  }

  async getStats(): Promise<NityClusterStats> {
    await this.#connected
    const stats = await call(() => this.#native.stats())
    return {
      totalSessions: stats.totalSessions,
      activeClients: stats.activeClients,
      sessionsByClient: counts(stats.sessionsByClient),
      nodes: stats.nodes,
      sessionsByNode: counts(stats.sessionsByNode),
    }
  }

  async nodes(): Promise<NityClusterNode[]> {
    await this.#connected
    const nodes = await call(() => this.#native.nodes())
    return Array.from(nodes, (node) => ({
      nodeId: node.nodeId,
      sessions: node.sessions,
      startedAt: node.startedAt,
      lastSeenAt: node.lastSeenAt,
    }))
  }

  async register(clientId: string, session: H): Promise<void> {
    if (typeof clientId !== 'string' || clientId === '') {
      throw nityError('ERR_INVALID_CLIENT_ID', `clientId must be a non-empty string, got ${describe(clientId)}`)
    }
    const id: unknown = session !== null && typeof session === 'object' ? session.id : undefined
    if (typeof id !== 'string' || id === '') {
      throw nityError('ERR_INVALID_SESSION', `session.id must be a non-empty string, got ${describe(id)}`)
    }
    await this.#connected
    const max = this.#settings.maxSessionsPerClient ?? 0
    const claim = await call(() => this.#native.claim(id, clientId, this.#local.now(), max))
    switch (claim.outcome) {
      case 'claimed':
        break
      case 'taken':
        throw nityError(
          'ERR_SESSION_ALREADY_REGISTERED',
          `session '${id}' is already registered under client '${claim.clientId}' on node '${claim.nodeId}'`,
        )
      case 'limit':
        throw nityError(
          'ERR_CLIENT_SESSION_LIMIT',
          `client '${clientId}' holds ${claim.count} sessions across the cluster, its maximum`,
        )
      default:
        throw nityError('ERR_CLUSTER_UNAVAILABLE', 'this node was fenced off; it is announcing itself again')
    }
    try {
      this.#local.register(clientId, session)
    } catch (error) {
      this.#native.release(id, clientId)
      throw error
    }
  }

  async unregister(sessionId: string): Promise<boolean> {
    if (typeof sessionId !== 'string') {
      throw nityError('ERR_INVALID_SESSION_ID', `sessionId must be a string, got ${describe(sessionId)}`)
    }
    if (this.#local.holds(sessionId)) {
      await this.#local.unregister(sessionId).catch(() => {})
      return true
    }
    await this.#connected
    return call(() => this.#native.unregister(sessionId))
  }

  async cleanupClient(clientId: string): Promise<number> {
    if (typeof clientId !== 'string') {
      throw nityError('ERR_INVALID_CLIENT_ID', `clientId must be a string, got ${describe(clientId)}`)
    }
    const here = await this.#local.cleanupClient(clientId)
    await this.#connected
    // Once this node's removals are published, only other nodes hold any.
    await call(() => this.#native.flush())
    const elsewhere = await call(() => this.#native.cleanupClient(clientId))
    return here + elsewhere
  }

  onNodeDown(listener: (event: NityNodeDownEvent) => void): () => void {
    if (typeof listener !== 'function') {
      throw nityError('ERR_INVALID_LISTENER', `a node-down listener must be a function, got ${describe(listener)}`)
    }
    const entry = (event: NityNodeDownEvent): void => listener(event)
    this.#listeners = [...this.#listeners, entry]
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== entry)
    }
  }

  async leave(): Promise<void> {
    this.#left = true
    try {
      await this.#connected
    } catch {
      return // never joined
    }
    await call(() => this.#native.leave())
  }

  diagnostics(): NityClusterDiagnostics {
    const counters = this.#native.diagnostics()
    return {
      malformedMessages: counters.malformedMessages,
      malformedRecords: counters.malformedRecords,
      reannounced: counters.reannounced,
      pendingChanges: counters.pendingChanges,
      resyncs: counters.resyncs,
      digestMismatches: counters.digestMismatches,
      conflicts: counters.conflicts,
    }
  }

  /** What the native cluster tells: a close another node asks of this one, or a node that died. */
  #receive(event: ClusterEvent): void {
    if (event.kind === 'resync') {
      if (!this.#left) this.#local.reseed()
      return
    }
    if (event.kind === 'conflict') {
      if (!this.#left && Array.isArray(event.sessionIds)) this.#local.closeConflicting(event.sessionIds)
      return
    }
    if (event.kind === 'nodeDown' && typeof event.nodeId === 'string') {
      const down: NityNodeDownEvent = { nodeId: event.nodeId, sessions: event.sessions ?? 0 }
      for (const listener of this.#listeners) {
        try {
          listener(down)
        } catch (thrown) {
          process.emitWarning(
            Object.assign(new Error('a node-down listener threw; the cluster carried on', { cause: thrown }), {
              name: 'NitySessionRegistryWarning',
            }),
          )
        }
      }
      return
    }
    if (event.kind !== 'close' || typeof event.requestId !== 'string') return
    const requestId = event.requestId
    const closing =
      typeof event.sessionId === 'string'
        ? this.#local.closeRemote(event.sessionId)
        : typeof event.clientId === 'string'
          ? this.#local.cleanupRemote(event.clientId)
          : Promise.resolve(0)
    // The answer says how many sessions were closed here; it waits for
    // their closes, as a local unregister does.
    void closing
      .catch(() => 1)
      .then((closed) => this.#native.answer(requestId, closed))
      .catch(() => {})
  }
}

// The types the registry reads and hands out.

/** The state a session reports in its health. */
export type NitySessionState = 'idle' | 'active' | 'completed' | 'error'

/** What `session.getHealth()` returns. */
export interface NitySessionHealth {
  state: NitySessionState
  /** Number of errors the session has seen. */
  errorCount: number
  /** Whether the running task exceeded its time limit. */
  isTimedOut: boolean
  /** Milliseconds since the current task started (0 if idle). */
  uptime: number
  /** Timestamp of the session's last activity. */
  lastActivity: number
}

/** What a session's task resolves with. */
export interface NityTaskResult {
  output: string
  [key: string]: unknown
}

/**
 * What the registry needs of a session: an `id` and a `close()` method.
 * `getHealth()` (for `cleanupStale`) and `isRunning()` (for the idle timeout
 * and eviction) are used when present: a session without `getHealth` is
 * never stale, and one without `isRunning` counts as running. Methods are
 * called as methods of the handle, so class instances that use `this` work.
 */
export interface NitySessionLike {
  readonly id: string
  close(): unknown
  getHealth?(): NitySessionHealth
  isRunning?(): boolean
}

/**
 * A session of the Bridge SDK, as the documentation types it: sessions
 * created by `createNitySession` fit this type; so does any object with
 * these members. A registry holds `NitySessionHandle`s unless told another
 * handle type (`new NitySessionRegistry<MySession>()`, any `NitySessionLike`).
 */
export interface NitySessionHandle extends NitySessionLike {
  close(): Promise<void> | void
  getHealth(): NitySessionHealth
  isRunning(): boolean
  // biome-ignore lint/suspicious/noExplicitAny: the Bridge SDK documents these extra arguments as any[]
  sendTask(taskType: string, prompt: string, ...rest: any[]): Promise<NityTaskResult>
}

/** What `getStats()` returns. */
export interface NitySessionRegistryStats {
  totalSessions: number
  activeClients: number
  sessionsByClient: Record<string, number>
}

/**
 * Why a session was closed: the call that closed it (`'unregister'`,
 * `'cleanupClient'`, `'cleanupStale'` — also the automatic stale cleanup),
 * `'idle'` (idle past `idleTimeoutMs` and not running), `'evicted'` (to make
 * room in a full registry), `'shutdown'` (`closeAll()` / `dispose()`) or
 * `'remote'` (another node of the cluster asked: `cluster.unregister`,
 * `cluster.cleanupClient`) or `'conflict'` (another live node of the
 * cluster holds the same session id: it claimed it while this node was cut
 * off, and the shared directory's record wins).
 */
export type NitySessionCloseReason =
  | 'unregister'
  | 'cleanupClient'
  | 'cleanupStale'
  | 'idle'
  | 'evicted'
  | 'shutdown'
  | 'remote'
  | 'conflict'

/** Told to close listeners once a handle's `close()` has settled. */
export interface NitySessionClosedEvent {
  sessionId: string
  clientId: string
  reason: NitySessionCloseReason
  /**
   * Present when `close()` threw or rejected (what it threw), or did not
   * settle before the close deadline (an `Error` with code `ERR_CLOSE_TIMEOUT`).
   */
  error?: unknown
  /** `true` when the registry gave up on a `close()` at the close deadline. */
  timedOut?: true
  /** From calling `close()` to its settling (or to the deadline), in milliseconds. */
  durationMs: number
}

/**
 * The registry's time: `now()` in milliseconds and timers on the same
 * clock. Without one, the registry uses `Date.now()`, `setTimeout` and
 * `clearTimeout` as they are on `globalThis` when it needs them (so fake
 * timers drive it); tests pass their own to drive time by hand.
 */
export interface NitySessionClock {
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** What `getSessionInfo()` and `list()` report about a session. */
export interface NitySessionInfo {
  sessionId: string
  clientId: string
  /** On the registry's clock (by default epoch milliseconds). */
  registeredAt: number
  /** Registration, `touch()`, or a lookup that handed the session out. */
  lastActivityAt: number
  /** The session's metrics, as merged by `updateMetrics()`. */
  metrics: Record<string, number>
}

/** `list()`'s options. */
export interface NitySessionListOptions {
  /** Only this client's sessions. */
  clientId?: string | undefined
  /** Rows per page (default 100). */
  limit?: number | undefined
  /** The `next` cursor of the previous page. */
  after?: string | undefined
}

/** One page of `list()`, in registration order. */
export interface NitySessionPage {
  sessions: NitySessionInfo[]
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string
}

/** What `getMetrics()` returns, kept up to date without scanning. */
export interface NitySessionRegistryMetrics {
  sessionsRegistered: number
  /** Sessions removed for closing, whatever their close then did. */
  sessionsClosed: number
  closesByReason: Record<NitySessionCloseReason, number>
  /** Closes that threw or rejected. */
  closeFailures: number
  /** Closes given up on at the close deadline. */
  closeTimeouts: number
  averageCloseDurationMs: number
  maxCloseDurationMs: number
  /** Registration to removal, over closed sessions. */
  averageSessionLifetimeMs: number
  /** Per metric name, the sum over all sessions ever registered of their latest value. */
  metricTotals: Record<string, number>
}

/**
 * Options of `new NitySessionRegistry(options)`; all optional. Without any,
 * the registry behaves exactly as the documented API.
 */
export interface NitySessionRegistryOptions {
  /** A listener for every close, as if passed to `onSessionClosed`. */
  onSessionClosed?: ((event: NitySessionClosedEvent) => void) | undefined
  /**
   * Run the stale cleanup automatically, this many milliseconds after the
   * previous run finished (see `startAutoCleanup`). Never keeps the process
   * alive.
   */
  cleanupIntervalMs?: number | undefined
  /**
   * Sessions inactive for longer than this many milliseconds, and whose
   * `isRunning()` returns `false`, are closed by the stale cleanup with
   * reason `'idle'`.
   */
  idleTimeoutMs?: number | undefined
  /**
   * How long a `close()` may take before the registry gives up on it and
   * reports it as timed out (default 10,000 ms). Until then, a close that a
   * call returned a promise for keeps the process alive.
   */
  closeTimeoutMs?: number | undefined
  /** Most closes bulk cleanups run at once (default 64). */
  maxConcurrentCloses?: number | undefined
  /** Most sessions the registry holds; `register` beyond it throws `ERR_SESSION_LIMIT`. */
  maxSessions?: number | undefined
  /** Most sessions one client holds; beyond it `register` throws `ERR_CLIENT_SESSION_LIMIT`. */
  maxSessionsPerClient?: number | undefined
  /**
   * When a limit is reached, close the least recently active session whose
   * `isRunning()` returns `false` (of that client, or of the whole registry)
   * with reason `'evicted'` to make room, instead of throwing.
   */
  evictIdle?: boolean | undefined
  /** The registry's clock (default: the system clock). */
  clock?: NitySessionClock | undefined
  /** Join a fleet of registries through Redis (see `NityClusterOptions`); `registry.cluster` is then set. */
  cluster?: NityClusterOptions | undefined
}

/** The `cluster` option: join a fleet of registries sharing one view of their sessions through Redis. */
export interface NityClusterOptions {
  /** `redis://` or `rediss://` (TLS); `user:password@` for ACL users; a database number as the path. */
  redis: string
  /** Registries see each other only within one namespace (default `'nity'`). 1 to 64 of `A-Z a-z 0-9 _ . -`. */
  namespace?: string | undefined
  /** This node's id (default: the host name, the process id and a random suffix). */
  nodeId?: string | undefined
  /** A node silent this long is dead and its records go (default 3000 ms). */
  leaseMs?: number | undefined
  /** Remote requests not answered by then reject with `ERR_CLUSTER_TIMEOUT` (default 2000 ms). */
  requestTimeoutMs?: number | undefined
  /** The most sessions one client may hold fleet-wide through `cluster.register` (default: no limit). */
  maxSessionsPerClient?: number | undefined
}

/** A session as the fleet-wide directory records it. */
export interface NityClusterSessionInfo {
  sessionId: string
  clientId: string
  nodeId: string
  /** On the registering node's clock. */
  registeredAt: number
}

/** What `cluster.getStats()` returns, over live nodes. */
export interface NityClusterStats {
  totalSessions: number
  activeClients: number
  sessionsByClient: Record<string, number>
  nodes: number
  sessionsByNode: Record<string, number>
}

/** A live node of the fleet. */
export interface NityClusterNode {
  nodeId: string
  sessions: number
  startedAt: number
  lastSeenAt: number
}

/** Told when a node is declared dead and its records are removed. */
export interface NityNodeDownEvent {
  nodeId: string
  sessions: number
}

/** `registry.cluster`: the fleet-wide view. Every call is async; the documented calls stay local. */
export interface NityCluster<H extends NitySessionLike = NitySessionHandle> {
  readonly nodeId: string
  /** Resolves once connected and announced; rejects with `ERR_CLUSTER_UNAVAILABLE`. */
  ready(): Promise<void>
  /** Resolves once every local change made before the call is visible to every node. */
  flush(): Promise<void>
  getSession(sessionId: string): Promise<NityClusterSessionInfo | undefined>
  /** The client's sessions on every live node, oldest first. */
  getClientSessions(clientId: string): Promise<NityClusterSessionInfo[]>
  getStats(): Promise<NityClusterStats>
  nodes(): Promise<NityClusterNode[]>
  /**
   * Claims the id fleet-wide (atomically), then registers locally. Rejects
   * with `ERR_SESSION_ALREADY_REGISTERED` when a live node holds the id, and
   * with `ERR_CLIENT_SESSION_LIMIT` over the fleet-wide `maxSessionsPerClient`.
   */
  register(clientId: string, session: H): Promise<void>
  /**
   * Closes the session wherever it lives (close reason `'remote'` on its
   * node). `true` when it was closed, `false` when no live node held it.
   * Rejects with `ERR_CLUSTER_TIMEOUT` after `requestTimeoutMs`.
   */
  unregister(sessionId: string): Promise<boolean>
  /** Closes the client's sessions on every node; resolves with the total count. */
  cleanupClient(clientId: string): Promise<number>
  /** Told when a node is declared dead; returns the unsubscribe function. */
  onNodeDown(listener: (event: NityNodeDownEvent) => void): () => void
  /** Removes this node and its records at once; other nodes hear of it at once. */
  leave(): Promise<void>
  /** Counters of what this node ignored or repaired, for operations. */
  diagnostics(): NityClusterDiagnostics
}

/** What a cluster node ignored or repaired since it started. */
export interface NityClusterDiagnostics {
  /** Messages on the namespace's channel that were not the cluster's. */
  malformedMessages: number
  /** Records in the namespace this directory did not write. */
  malformedRecords: number
  /** Times the node announced itself again (fenced off, or Redis lost its data) and re-asserted its sessions. */
  reannounced: number
  /** Local changes waiting to be published. */
  pendingChanges: number
  /** Resyncs of this node's records run to the end (after an announcement, a failed publication or a digest mismatch). */
  resyncs: number
  /** Heartbeats that found the directory's digest of this node's records different from what the node holds. */
  digestMismatches: number
  /** Sessions closed here with reason `'conflict'`: another live node held their ids. */
  conflicts: number
}

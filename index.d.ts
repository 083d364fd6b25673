/* The hand-written part of index.d.ts: the types the registry reads and
 * hands out. `napi build` puts this text at the top of the generated file. */

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
 * A session as the registry sees it. Sessions created by the Bridge SDK's
 * `createNitySession` fit this type; so does any object with these members.
 * `close()` and `getHealth()` are called as methods of the handle.
 */
export interface NitySessionHandle {
  readonly id: string
  close(): Promise<void> | void
  getHealth(): NitySessionHealth
  isRunning(): boolean
  sendTask(taskType: string, prompt: string, ...rest: any[]): Promise<NityTaskResult>
}

/** What `getStats()` returns. */
export interface NitySessionRegistryStats {
  totalSessions: number
  activeClients: number
  sessionsByClient: Record<string, number>
}

/** Which call closed a session. */
export type NitySessionCloseReason = 'unregister' | 'cleanupClient' | 'cleanupStale'

/** Told to close listeners once a handle's `close()` has settled. */
export interface NitySessionClosedEvent {
  sessionId: string
  clientId: string
  reason: NitySessionCloseReason
  /** Present when `close()` threw or rejected: what it threw. */
  error?: unknown
  /** From calling `close()` to its settling, in milliseconds. */
  durationMs: number
}

/** Options of `new NitySessionRegistry(options)`; all optional. */
export interface NitySessionRegistryOptions {
  /** A listener for every close, as if passed to `onSessionClosed`. */
  onSessionClosed?: (event: NitySessionClosedEvent) => void
}

/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/**
 * Tracks the sessions of every connected client, finds them again, and
 * closes them when their client leaves or they go stale.
 *
 * Handles are kept as given: lookups return the very objects that were
 * registered. A session is removed from the registry before its `close()`
 * runs, so racing calls close it exactly once and a `close()` that throws,
 * rejects or calls back into the registry never leaves it behind.
 */
export declare class NitySessionRegistry<H extends NitySessionHandle = NitySessionHandle> {
  /**
   * Creates an empty registry. `options` is optional; see
   * `NitySessionRegistryOptions`.
   */
  constructor(options?: NitySessionRegistryOptions)
  /**
   * Registers a session under a client. A client may own many sessions.
   *
   * Registering the same handle again under the same client does nothing;
   * any other reuse of a registered id throws `ERR_SESSION_ALREADY_REGISTERED`
   * and keeps the first registration. Invalid arguments throw a `TypeError`.
   * A call that throws changes nothing.
   */
  register(clientId: string, session: H): void
  /**
   * Removes a session and closes it. Resolves once its `close()` has
   * settled and rejects with the handle's error if `close()` fails (the
   * session is removed either way). An unknown id resolves at once; the id
   * of a session still closing resolves when that close ends.
   */
  unregister(sessionId: string): Promise<void>
  /**
   * Closes every session of a client concurrently and resolves with how
   * many were removed (0 for an unknown client). Failed closes do not
   * reject: they are reported to the close hooks.
   */
  cleanupClient(clientId: string): Promise<number>
  /**
   * The client's sessions in registration order, as a new array (empty
   * when the client has none).
   */
  getClientSessions(clientId: string): H[]
  /** The session registered under this id, or `undefined`. */
  getSession(sessionId: string): H | undefined
  /** `{ totalSessions, activeClients, sessionsByClient }`, counted now. */
  getStats(): NitySessionRegistryStats
  /**
   * Asks every session for its health and closes those that are timed out
   * or in the error state (a `getHealth()` that throws counts as error; a
   * session without `getHealth` is left alone). Resolves with the number
   * removed; failed closes are reported to the close hooks. Large
   * registries are scanned in slices that yield to the event loop.
   */
  cleanupStale(): Promise<number>
  /** Subscribes to close events; returns the function that unsubscribes. */
  onSessionClosed(listener: (event: NitySessionClosedEvent) => void): () => void
}

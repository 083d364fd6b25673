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

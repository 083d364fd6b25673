// The close listeners, and the events they are told.

import type { NitySessionCloseReason, NitySessionClosedEvent } from './types'

type Listener = (event: NitySessionClosedEvent) => void

export class CloseHooks {
  private listeners: Listener[] = []

  get empty(): boolean {
    return this.listeners.length === 0
  }

  /** Adds a listener; the function returned removes it, once. */
  add(listener: Listener): () => void {
    // Each subscription is its own entry, so the same function added twice
    // is told twice and removed once per unsubscribe.
    const entry: Listener = (event) => listener(event)
    this.listeners = [...this.listeners, entry]
    return () => {
      this.listeners = this.listeners.filter((l) => l !== entry)
    }
  }

  /**
   * Tells every listener subscribed now. A listener that throws is reported
   * as a process warning and the others are still told.
   */
  deliver(
    sessionId: string,
    clientId: string,
    reason: NitySessionCloseReason,
    durationMs: number,
    failure: { error: unknown; timedOut: boolean } | undefined,
  ): void {
    const listeners = this.listeners
    if (listeners.length === 0) return
    const event: NitySessionClosedEvent = { sessionId, clientId, reason, durationMs }
    if (failure !== undefined) {
      event.error = failure.error
      if (failure.timedOut) event.timedOut = true
    }
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (thrown) {
        warnListenerFailed(thrown)
      }
    }
  }
}

function warnListenerFailed(thrown: unknown): void {
  try {
    const warning = new Error('a session close listener threw; the registry carried on', { cause: thrown })
    warning.name = 'NitySessionRegistryWarning'
    ;(warning as Error & { code: string }).code = 'ERR_CLOSE_LISTENER_FAILED'
    process.emitWarning(warning)
  } catch {
    // Warning is a courtesy; the registry carries on regardless.
  }
}

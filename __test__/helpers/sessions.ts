import type { NitySessionHandle, NitySessionHealth, NityTaskResult } from 'nity-session-registry'

/** How a fake session's `close()` behaves. */
export type CloseBehaviour =
  | { kind: 'resolve' }
  | { kind: 'sync' }
  | { kind: 'throw'; error: unknown }
  | { kind: 'reject'; error: unknown }
  | { kind: 'never' }
  | { kind: 'manual' }
  | { kind: 'custom'; run: (session: FakeSession) => unknown }

/**
 * A session with the documented shape. A class on purpose: the registry must
 * call `close()` and `getHealth()` as methods, with `this` bound.
 */
export class FakeSession implements NitySessionHandle {
  closeCalls = 0
  health: NitySessionHealth = { state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: Date.now() }
  healthError: unknown = undefined
  running = false
  /** Settles a `manual` close. */
  settle: { resolve: () => void; reject: (e: unknown) => void } | undefined

  constructor(
    readonly id: string,
    public behaviour: CloseBehaviour = { kind: 'resolve' },
  ) {}

  close(): Promise<void> | void {
    this.closeCalls += 1
    const behaviour = this.behaviour
    switch (behaviour.kind) {
      case 'resolve':
        return Promise.resolve()
      case 'sync':
        return
      case 'throw':
        throw behaviour.error
      case 'reject':
        return Promise.reject(behaviour.error)
      case 'never':
        return new Promise<void>(() => {})
      case 'manual':
        return new Promise<void>((resolve, reject) => {
          this.settle = { resolve, reject }
        })
      case 'custom':
        return behaviour.run(this) as Promise<void>
    }
  }

  getHealth(): NitySessionHealth {
    if (this.healthError !== undefined) throw this.healthError
    return this.health
  }

  isRunning(): boolean {
    return this.running
  }

  async sendTask(taskType: string, prompt: string): Promise<NityTaskResult> {
    return { output: `${taskType}:${prompt}` }
  }
}

export function stale(session: FakeSession, how: 'timedOut' | 'error'): FakeSession {
  session.health =
    how === 'timedOut'
      ? { ...session.health, state: 'active', isTimedOut: true }
      : { ...session.health, state: 'error' }
  return session
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

// The README's rejection recipe with real timers, a registry per test, and
// garbage collections forced while each close is pending: every pending
// call settles at its deadline whatever the collector takes meanwhile.
// jest runs its test files in several workers; this file stands for the
// suites that failed at random when a collection took a registry whose
// close was still pending.
import { describe, expect, it } from '@jest/globals'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { NitySessionRegistry, type NitySessionHandle } from 'nity-session-registry'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const CLOSE_TIMEOUT_MS = 50

function hanging(id: string, state: 'idle' | 'error' = 'idle'): NitySessionHandle {
  return {
    id,
    close: () => new Promise<void>(() => {}),
    getHealth: () => ({ state, errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: Date.now() }),
    isRunning: () => false,
    sendTask: async () => ({ output: '' }),
  }
}

/** Collects garbage a few times while the call is pending (10 ms in, as in the report). */
function collectWhilePending(): void {
  for (const ms of [0, 10, 20, 30]) setTimeout(gc, ms)
}

/** The registry is made and dropped here: the caller keeps only the promise. */
function start(call: 'unregister' | 'cleanupClient' | 'cleanupStale' | 'dispose'): Promise<unknown> {
  const registry = new NitySessionRegistry({ closeTimeoutMs: CLOSE_TIMEOUT_MS })
  registry.register('client', hanging('hang', call === 'cleanupStale' ? 'error' : 'idle'))
  if (call === 'unregister') return registry.unregister('hang')
  if (call === 'cleanupClient') return registry.cleanupClient('client')
  if (call === 'cleanupStale') return registry.cleanupStale()
  return registry.dispose()
}

describe('a pending close settles at its deadline after garbage collections, under jest', () => {
  for (let round = 1; round <= 5; round++) {
    it(`round ${round}: await expect(registry.unregister(id)).rejects.toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })`, async () => {
      const pending = start('unregister')
      collectWhilePending()
      await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSE_TIMEOUT' })
    })
  }

  it.each(['cleanupClient', 'cleanupStale', 'dispose'] as const)('%s resolves with 1 at the deadline', async (call) => {
    const pending = start(call)
    collectWhilePending()
    await expect(pending).resolves.toBe(1)
  })
})

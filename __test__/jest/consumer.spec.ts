import { describe, expect, it } from '@jest/globals'
import { NitySessionRegistry, type NitySessionHandle } from 'nity-session-registry'

function session(id: string, closed: string[]): NitySessionHandle {
  return {
    id,
    close: async () => {
      closed.push(id)
    },
    getHealth: () => ({ state: 'idle', errorCount: 0, isTimedOut: false, uptime: 0, lastActivity: Date.now() }),
    isRunning: () => false,
    sendTask: async () => ({ output: '' }),
  }
}

describe('nity-session-registry under jest', () => {
  it('registers, finds and cleans up a client', async () => {
    const closed: string[] = []
    const registry = new NitySessionRegistry()
    const handle = session('s1', closed)
    registry.register('client-abc', handle)
    expect(registry.getSession('s1')).toBe(handle)
    expect(registry.getStats()).toEqual({ totalSessions: 1, activeClients: 1, sessionsByClient: { 'client-abc': 1 } })
    await expect(registry.cleanupClient('client-abc')).resolves.toBe(1)
    expect(closed).toEqual(['s1'])
    expect(registry.getClientSessions('client-abc')).toEqual([])
  })
})

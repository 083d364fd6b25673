import type { NitySessionClock } from 'nity-session-registry'

/**
 * A clock that only moves when told to, for the registry's `clock` option:
 * time-based behaviour is tested by advancing it, never by sleeping.
 */
export class ManualClock implements NitySessionClock {
  private timers: { id: number; at: number; callback: () => void }[] = []
  private nextId = 0

  constructor(private time = 1_000_000) {}

  now(): number {
    return this.time
  }

  setTimeout(callback: () => void, ms: number): number {
    const id = ++this.nextId
    this.timers.push({ id, at: this.time + ms, callback })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle)
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.timers.length
  }

  /** Moves time forward, firing due timers in order (each at its own time). */
  advance(ms: number): void {
    const until = this.time + ms
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0]
      if (due === undefined) break
      this.timers = this.timers.filter((timer) => timer !== due)
      this.time = Math.max(this.time, due.at)
      due.callback()
    }
    this.time = until
  }
}

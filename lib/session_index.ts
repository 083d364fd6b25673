// The handles this process holds: by id and by client for lookups that never
// cross into native code, and by the core's slot for the closes it orders.
// Mechanics only: what is registered is decided by the core, and this index
// follows its answers.

/** A registered session as the surface keeps it. */
export interface Entry<H> {
  readonly handle: H
  readonly id: string
  readonly clientId: string
  readonly slot: number
  /** Still registered; false once the core removed it. */
  live: boolean
  /** When a lookup last handed it out, on the registry's clock. */
  seenAt: number
  /** Waiting in the lookup log for the core to hear of it. */
  logged: boolean
}

/** Lookups logged before the log is handed to the core unasked. */
const LOOKUP_LOG_LIMIT = 4096

export class SessionIndex<H> {
  /** `flushLookups` hands the lookup log to the core; called when it grows long. */
  constructor(private readonly flushLookups: () => void) {}

  readonly byId = new Map<string, Entry<H>>()
  /** Clients in order of arrival (a client that empties and comes back arrives again). */
  readonly byClient = new Map<string, Set<Entry<H>>>()
  private readonly bySlot: Array<Entry<H> | undefined> = []
  /** Lookups the core has not heard of yet, first looked up first. */
  private lookups: Array<Entry<H>> = []

  add(slot: number, id: string, clientId: string, handle: H): Entry<H> {
    const entry: Entry<H> = { handle, id, clientId, slot, live: true, seenAt: 0, logged: false }
    this.byId.set(id, entry)
    let sessions = this.byClient.get(clientId)
    if (sessions === undefined) {
      sessions = new Set()
      this.byClient.set(clientId, sessions)
    }
    sessions.add(entry)
    this.bySlot[slot] = entry
    return entry
  }

  at(slot: number): Entry<H> | undefined {
    return this.bySlot[slot]
  }

  /** Takes the session in `slot` out of the index, as the core just did. */
  take(slot: number): Entry<H> | undefined {
    const entry = this.bySlot[slot]
    if (entry === undefined) return undefined
    this.bySlot[slot] = undefined
    entry.live = false
    this.byId.delete(entry.id)
    const sessions = this.byClient.get(entry.clientId)
    if (sessions !== undefined) {
      sessions.delete(entry)
      if (sessions.size === 0) this.byClient.delete(entry.clientId)
    }
    return entry
  }

  /** Notes that a lookup handed `entry` out at `now`. */
  noteLookup(entry: Entry<H>, now: number): void {
    entry.seenAt = now
    if (!entry.logged) {
      entry.logged = true
      this.lookups.push(entry)
      // A long log would keep removed handles alive; the core hears of it now.
      if (this.lookups.length >= LOOKUP_LOG_LIMIT) this.flushLookups()
    }
  }

  /**
   * The lookups since the last call, for the core: slots and times, oldest
   * last lookup first, of sessions still registered.
   */
  takeLookups(): { slots: Uint32Array; times: Float64Array } | undefined {
    if (this.lookups.length === 0) return undefined
    const lookups = this.lookups
    this.lookups = []
    const live = lookups.filter((entry) => {
      entry.logged = false
      return entry.live
    })
    live.sort((a, b) => a.seenAt - b.seenAt)
    const slots = new Uint32Array(live.length)
    const times = new Float64Array(live.length)
    live.forEach((entry, i) => {
      slots[i] = entry.slot
      times[i] = entry.seenAt
    })
    return { slots, times }
  }
}

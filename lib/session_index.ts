// The handles this process holds: by id and by client for lookups that never
// cross into native code, and by the core's slot for the removals it orders.
// This is the one index by session id; the core addresses sessions by slot
// and decides what is registered, and this index follows its answers: a
// registration the core admitted is added, and the removals the core ordered
// come back through `apply`, the only way an entry leaves.
//
// Lookups are activity (for the idle timeout, eviction order and
// `lastActivityAt`), which the core judges. Telling it on every lookup would
// cost more than the lookup, so a lookup writes its time into `lookups`, by
// slot, and the registry passes that array to the core's calls that read
// activity: nothing is handed over or flushed.

/** A registered session as the surface keeps it. */
export interface Entry<H> {
  readonly handle: H
  readonly id: string
  readonly clientId: string
  /** The core's slot of the session; -1 once the core removed it. */
  slot: number
  /** Registration number in this index: later registrations have larger ones. */
  readonly serial: number
}

/** Slots the lookup times are first made for; the array doubles as slots grow. */
const INITIAL_SLOTS = 1024

export class SessionIndex<H> {
  /** In registration order (an id registered again comes last). */
  readonly byId = new Map<string, Entry<H>>()
  /**
   * Each client's sessions in registration order; clients in order of
   * arrival (a client that empties and comes back arrives again).
   */
  readonly byClient = new Map<string, Set<Entry<H>>>()
  private readonly bySlot: Array<Entry<H> | undefined> = []
  /**
   * When a lookup last handed out the session in each slot; minus infinity
   * when none did since it was registered. Read by the core.
   */
  lookups = new Float64Array(INITIAL_SLOTS).fill(Number.NEGATIVE_INFINITY)
  /** The serial of the latest registration. */
  registered = 0

  /** Adds a session the core admitted into `slot`. */
  add(slot: number, id: string, clientId: string, handle: H): Entry<H> {
    this.registered += 1
    const entry: Entry<H> = { handle, id, clientId, slot, serial: this.registered }
    this.byId.set(id, entry)
    let client = this.byClient.get(clientId)
    if (client === undefined) {
      client = new Set()
      this.byClient.set(clientId, client)
    }
    client.add(entry)
    this.bySlot[slot] = entry
    if (slot >= this.lookups.length) this.grow(slot)
    // The slot may be reused: the lookups of the session that had it are not this one's.
    this.lookups[slot] = Number.NEGATIVE_INFINITY
    return entry
  }

  at(slot: number): Entry<H> | undefined {
    return this.bySlot[slot]
  }

  /**
   * Takes out the sessions the core just removed, in `slots`, and returns
   * their entries in that order. Every removal passes here.
   */
  apply(slots: ArrayLike<number>): Array<Entry<H> | undefined> {
    const taken = new Array<Entry<H> | undefined>(slots.length)
    for (let i = 0; i < slots.length; i++) taken[i] = this.take(slots[i]!)
    return taken
  }

  private take(slot: number): Entry<H> | undefined {
    const entry = this.bySlot[slot]
    if (entry === undefined) return undefined
    this.bySlot[slot] = undefined
    entry.slot = -1
    this.byId.delete(entry.id)
    const client = this.byClient.get(entry.clientId)
    if (client !== undefined) {
      client.delete(entry)
      if (client.size === 0) this.byClient.delete(entry.clientId)
    }
    return entry
  }

  private grow(slot: number): void {
    let length = this.lookups.length
    while (length <= slot) length *= 2
    const grown = new Float64Array(length).fill(Number.NEGATIVE_INFINITY)
    grown.set(this.lookups)
    this.lookups = grown
  }
}

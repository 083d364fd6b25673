// The handles this process holds: by id and by client for lookups that never
// cross into native code, and by the core's slot for the closes it orders.
// Mechanics only: what is registered is decided by the core, and this index
// follows its answers.
//
// Lookups are activity (for the idle timeout, eviction order and
// `lastActivityAt`), which the core keeps. Telling it on every lookup would
// cost more than the lookup, so the index notes them (a number written on
// the session or client, once listed as noted) and hands them over when the
// core is about to read activity.

/** A registered session as the surface keeps it. */
export interface Entry<H> {
  readonly handle: H
  readonly id: string
  readonly clientId: string
  /** The core's slot of the session; -1 once the core removed it. */
  slot: number
  /** Registration number in this index: later registrations have larger ones. */
  readonly order: number
  /** Its last lookup not yet told to the core, if it is of the current round. */
  seen: Seen | undefined
}

/**
 * A session's last lookup, listed for the core. It holds no handle, so a
 * session removed after a lookup is not kept alive by the list.
 */
interface Seen {
  /** The session's slot; -1 once it was removed. */
  slot: number
  at: number
  /** The round of lookups it belongs to; the core hears of a round at once. */
  readonly round: number
}

/** A client's sessions, in registration order, and its last lookup not yet told to the core. */
export interface ClientSessions<H> {
  readonly sessions: Set<Entry<H>>
  /** When `getClientSessions` last handed them out; NaN when not since the core was told. */
  seenAt: number
  /** The sessions it handed out are those with an `order` up to this one. */
  seenBefore: number
  /** Still a client of the index. */
  live: boolean
}

/** Removed sessions or clients listed for the core before the list is compacted. */
const COMPACT_AFTER = 1024

export class SessionIndex<H> {
  readonly byId = new Map<string, Entry<H>>()
  /** Clients in order of arrival (a client that empties and comes back arrives again). */
  readonly byClient = new Map<string, ClientSessions<H>>()
  private readonly bySlot: Array<Entry<H> | undefined> = []
  private registered = 0
  /** Sessions and clients with a lookup the core has not heard of, each listed once. */
  private seenSessions: Seen[] = []
  private round = 0
  private seenClients: Array<ClientSessions<H>> = []
  /** How many of those were removed since (they are dropped when the lists are compacted). */
  private goneSessions = 0
  private goneClients = 0

  add(slot: number, id: string, clientId: string, handle: H): Entry<H> {
    this.registered += 1
    const entry: Entry<H> = { handle, id, clientId, slot, order: this.registered, seen: undefined }
    this.byId.set(id, entry)
    let client = this.byClient.get(clientId)
    if (client === undefined) {
      client = { sessions: new Set(), seenAt: Number.NaN, seenBefore: 0, live: true }
      this.byClient.set(clientId, client)
    }
    client.sessions.add(entry)
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
    entry.slot = -1
    this.byId.delete(entry.id)
    if (entry.seen !== undefined && entry.seen.round === this.round) {
      entry.seen.slot = -1
      if (++this.goneSessions > COMPACT_AFTER) this.compact()
    }
    entry.seen = undefined
    const client = this.byClient.get(entry.clientId)
    if (client !== undefined) {
      client.sessions.delete(entry)
      if (client.sessions.size === 0) {
        this.byClient.delete(entry.clientId)
        client.live = false
        if (!Number.isNaN(client.seenAt) && ++this.goneClients > COMPACT_AFTER) this.compact()
      }
    }
    return entry
  }

  /** Notes that a lookup handed `entry` out at `now`. */
  seenSession(entry: Entry<H>, now: number): void {
    const seen = entry.seen
    if (seen !== undefined && seen.round === this.round) {
      seen.at = now
    } else {
      const listed: Seen = { slot: entry.slot, at: now, round: this.round }
      entry.seen = listed
      this.seenSessions.push(listed)
    }
  }

  /** Notes that a lookup handed out every session of `client` at `now`. */
  seenClient(client: ClientSessions<H>, now: number): void {
    if (Number.isNaN(client.seenAt)) this.seenClients.push(client)
    client.seenAt = now
    client.seenBefore = this.registered
  }

  /** Drops removed sessions and clients from the lookup lists, so they keep no handle alive. */
  private compact(): void {
    if (this.goneSessions * 2 > this.seenSessions.length) {
      this.seenSessions = this.seenSessions.filter((seen) => seen.slot >= 0)
      this.goneSessions = 0
    }
    if (this.goneClients * 2 > this.seenClients.length) {
      this.seenClients = this.seenClients.filter((client) => client.live)
      this.goneClients = 0
    }
  }

  /**
   * The lookups since the last call, for the core: slots and times of the
   * sessions handed out that are still registered, oldest first.
   */
  takeLookups(): { slots: Uint32Array; times: Float64Array } | undefined {
    if (this.seenSessions.length === 0 && this.seenClients.length === 0) return undefined
    const seen: Array<[number, number]> = []
    for (const session of this.seenSessions) {
      if (session.slot >= 0) seen.push([session.at, session.slot])
    }
    this.round += 1
    for (const client of this.seenClients) {
      if (client.live) {
        for (const entry of client.sessions) {
          if (entry.order <= client.seenBefore) seen.push([client.seenAt, entry.slot])
        }
      }
      client.seenAt = Number.NaN
    }
    this.seenSessions = []
    this.seenClients = []
    this.goneSessions = 0
    this.goneClients = 0
    // Stable: lookups at the same time keep the order they were listed in.
    seen.sort((a, b) => a[0] - b[0])
    const slots = new Uint32Array(seen.length)
    const times = new Float64Array(seen.length)
    seen.forEach(([at, slot], i) => {
      slots[i] = slot
      times[i] = at
    })
    return { slots, times }
  }
}

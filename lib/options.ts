// Reading `new NitySessionRegistry(options)`: every option is optional; a
// wrong or unknown one is a TypeError that names it, and no registry is made.

import { describe, nityError, type NityError } from './errors'
import type { NityClusterOptions, NitySessionClock, NitySessionClosedEvent, NitySessionRegistryOptions } from './types'

/** The default close deadline. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000

/** The options as the registry uses them. */
export interface Options {
  onSessionClosed: ((event: NitySessionClosedEvent) => void) | undefined
  cleanupIntervalMs: number | undefined
  idleTimeoutMs: number | undefined
  closeTimeoutMs: number
  maxConcurrentCloses: number | undefined
  maxSessions: number | undefined
  maxSessionsPerClient: number | undefined
  evictIdle: boolean
  clock: NitySessionClock | undefined
  cluster: ClusterSettings | undefined
}

const KNOWN: ReadonlyArray<keyof NitySessionRegistryOptions> = [
  'onSessionClosed',
  'cleanupIntervalMs',
  'idleTimeoutMs',
  'closeTimeoutMs',
  'maxConcurrentCloses',
  'maxSessions',
  'maxSessionsPerClient',
  'evictIdle',
  'clock',
  'cluster',
]

function invalid(message: string): NityError {
  return nityError('ERR_INVALID_OPTIONS', message)
}

/** A positive, finite number of milliseconds, or `undefined` when absent. */
export function readDuration(value: unknown, name: string, fail: (message: string) => NityError): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value
  throw fail(`${name} must be a positive number of milliseconds, got ${describe(value)}`)
}

/** A positive integer (at most 2^32 - 1), or `undefined` when absent. */
function readCount(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 0xffff_ffff) return value
  throw invalid(`options.${name} must be a positive integer, got ${describe(value)}`)
}

/** The known name closest to a misspelled one, if it is close enough to be meant. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution)
    }
    previous = current
  }
  return previous[b.length]!
}

/** Throws `fail(...)` naming the first own key of `object` that is not in `known`. */
export function rejectUnknownKeys(
  object: object,
  known: readonly string[],
  what: string,
  fail: (message: string) => NityError,
): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue
    const meant = closest(key, known)
    const hint = meant === undefined ? `; known: ${known.join(', ')}` : `; did you mean '${meant}'?`
    throw fail(`unknown ${what} '${key}'${hint}`)
  }
}

function readClock(value: unknown): NitySessionClock | undefined {
  if (value === undefined) return undefined
  const clock = value as Partial<Record<keyof NitySessionClock, unknown>> | null
  const complete =
    typeof clock === 'object' &&
    clock !== null &&
    typeof clock.now === 'function' &&
    typeof clock.setTimeout === 'function' &&
    typeof clock.clearTimeout === 'function'
  if (!complete) {
    throw invalid(
      `options.clock must be an object with now(), setTimeout() and clearTimeout() methods, got ${describe(value)}`,
    )
  }
  return value as NitySessionClock
}

/** Reads and checks the constructor's options; throws the error for the first wrong one. */
export function readOptions(options: unknown): Options {
  const read: Options = {
    onSessionClosed: undefined,
    cleanupIntervalMs: undefined,
    idleTimeoutMs: undefined,
    closeTimeoutMs: DEFAULT_CLOSE_TIMEOUT_MS,
    maxConcurrentCloses: undefined,
    maxSessions: undefined,
    maxSessionsPerClient: undefined,
    evictIdle: false,
    clock: undefined,
    cluster: undefined,
  }
  if (options === undefined) return read
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`options must be an object (or left out), got ${describe(options)}`)
  }
  rejectUnknownKeys(options, KNOWN, 'option', invalid)
  const given = options as Record<keyof NitySessionRegistryOptions, unknown>
  if (given.onSessionClosed !== undefined) {
    if (typeof given.onSessionClosed !== 'function') {
      throw nityError(
        'ERR_INVALID_LISTENER',
        `options.onSessionClosed must be a function, got ${describe(given.onSessionClosed)}`,
      )
    }
    read.onSessionClosed = given.onSessionClosed as Options['onSessionClosed']
  }
  read.cleanupIntervalMs = readDuration(given.cleanupIntervalMs, 'options.cleanupIntervalMs', invalid)
  read.idleTimeoutMs = readDuration(given.idleTimeoutMs, 'options.idleTimeoutMs', invalid)
  read.closeTimeoutMs =
    readDuration(given.closeTimeoutMs, 'options.closeTimeoutMs', invalid) ?? DEFAULT_CLOSE_TIMEOUT_MS
  read.maxConcurrentCloses = readCount(given.maxConcurrentCloses, 'maxConcurrentCloses')
  read.maxSessions = readCount(given.maxSessions, 'maxSessions')
  read.maxSessionsPerClient = readCount(given.maxSessionsPerClient, 'maxSessionsPerClient')
  if (given.evictIdle !== undefined) {
    if (typeof given.evictIdle !== 'boolean') {
      throw invalid(`options.evictIdle must be a boolean, got ${describe(given.evictIdle)}`)
    }
    read.evictIdle = given.evictIdle
  }
  read.clock = readClock(given.clock)
  read.cluster = readCluster(given.cluster)
  return read
}

const CLUSTER_KEYS: ReadonlyArray<keyof NityClusterOptions> = [
  'redis',
  'namespace',
  'nodeId',
  'leaseMs',
  'requestTimeoutMs',
  'maxSessionsPerClient',
]

/** The cluster option as the registry uses it, defaults filled in. */
export interface ClusterSettings {
  redis: string
  namespace: string
  nodeId: string
  leaseMs: number
  requestTimeoutMs: number
  maxSessionsPerClient: number | undefined
}

function defaultNodeId(): string {
  // Required here, not at load: an ES module bundle without require() must
  // get as far as the loader's clear error (lib/platforms.ts).
  const { hostname } = require('node:os') as typeof import('node:os')
  const suffix = Math.random().toString(16).slice(2, 8)
  return `${hostname()}-${process.pid}-${suffix}`
}

/** Reads and checks the `cluster` option; `undefined` when absent. */
export function readCluster(value: unknown): ClusterSettings | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`options.cluster must be an object, got ${describe(value)}`)
  }
  rejectUnknownKeys(value, CLUSTER_KEYS, 'cluster option', invalid)
  const given = value as Record<keyof NityClusterOptions, unknown>
  if (typeof given.redis !== 'string' || !/^rediss?:\/\//.test(given.redis)) {
    throw invalid(`options.cluster.redis must be a redis:// or rediss:// URL, got ${describe(given.redis)}`)
  }
  const text = (name: 'namespace' | 'nodeId', fallback: () => string): string => {
    const given_ = given[name]
    if (given_ === undefined) return fallback()
    if (typeof given_ !== 'string' || given_ === '') {
      throw invalid(`options.cluster.${name} must be a non-empty string, got ${describe(given_)}`)
    }
    return given_
  }
  const namespace = text('namespace', () => 'nity')
  const nodeId = text('nodeId', defaultNodeId)
  if (new TextEncoder().encode(nodeId).length > 256 || /\p{Cc}/u.test(nodeId)) {
    throw invalid(
      `options.cluster.nodeId must be at most 256 bytes of printable text (no control characters), got ${describe(nodeId)}`,
    )
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(namespace)) {
    throw invalid(`options.cluster.namespace must be 1 to 64 of A-Z a-z 0-9 _ . -, got '${namespace}'`)
  }
  const whole = (ms: number | undefined, fallback: number): number => (ms === undefined ? fallback : Math.ceil(ms))
  return {
    redis: given.redis,
    namespace,
    nodeId,
    leaseMs: whole(readDuration(given.leaseMs, 'options.cluster.leaseMs', invalid), 3_000),
    requestTimeoutMs: whole(readDuration(given.requestTimeoutMs, 'options.cluster.requestTimeoutMs', invalid), 2_000),
    maxSessionsPerClient: readCount(given.maxSessionsPerClient, 'cluster.maxSessionsPerClient'),
  }
}

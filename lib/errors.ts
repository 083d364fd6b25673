// Every error the registry throws or rejects with: one list of codes, and
// the one place errors are made, in the caller's realm (this module's), so
// that `instanceof TypeError` and jest's `toThrow(TypeError)` hold.

/** What kind of error each code is: a bad argument (`TypeError`) or a refusal (`Error`). */
const KINDS = {
  /** `clientId` is not a non-empty string. */
  ERR_INVALID_CLIENT_ID: 'type',
  /** `session` is not an object with a non-empty string `id` and a `close()` method. */
  ERR_INVALID_SESSION: 'type',
  /** A lookup's `sessionId` is not a string. */
  ERR_INVALID_SESSION_ID: 'type',
  /** A constructor option is unknown or has a wrong value. */
  ERR_INVALID_OPTIONS: 'type',
  /** A close listener is not a function. */
  ERR_INVALID_LISTENER: 'type',
  /** `updateMetrics` got something other than an object of finite numbers. */
  ERR_INVALID_METRICS: 'type',
  /** `list()` got a cursor it did not hand out. */
  ERR_INVALID_CURSOR: 'type',
  /** Another argument is wrong: `startAutoCleanup`'s interval, `list()`'s options. */
  ERR_INVALID_ARG: 'type',
  /** The session id is registered already (under the client the message names). */
  ERR_SESSION_ALREADY_REGISTERED: 'refused',
  /** The registry holds `maxSessions` and could not make room. */
  ERR_SESSION_LIMIT: 'refused',
  /** The client holds `maxSessionsPerClient` and could not make room. */
  ERR_CLIENT_SESSION_LIMIT: 'refused',
  /** The registry was disposed and takes no more sessions. */
  ERR_REGISTRY_DISPOSED: 'refused',
  /** A `close()` did not settle within `closeTimeoutMs`; the registry gave up on it. */
  ERR_CLOSE_TIMEOUT: 'refused',
  /** The store shared between processes cannot be reached (cluster mode only). */
  ERR_CLUSTER_UNAVAILABLE: 'refused',
  /** A remote request was not answered within `requestTimeoutMs` (cluster mode only). */
  ERR_CLUSTER_TIMEOUT: 'refused',
  /** A live node of the namespace already goes by this `nodeId` (cluster mode only). */
  ERR_CLUSTER_NODE_ID_IN_USE: 'refused',
} as const

/** The stable `code` of every error the registry throws or rejects with. */
export type NityErrorCode = keyof typeof KINDS

/** Every code, for documentation and tests. */
export const ERROR_CODES = Object.keys(KINDS) as NityErrorCode[]

/**
 * An error of the registry: a `TypeError` (bad input) or an `Error` (a
 * refusal) with its stable `code`.
 */
export type NityError<C extends NityErrorCode = NityErrorCode> = Error & { code: C }

/** Makes the error for `code`, in this realm. */
export function nityError(code: NityErrorCode, message: string): NityError {
  const error = (KINDS[code] === 'type' ? new TypeError(message) : new Error(message)) as NityError
  error.code = code
  return error
}

function isCode(code: unknown): code is NityErrorCode {
  return typeof code === 'string' && Object.hasOwn(KINDS, code)
}

/**
 * Whether `value` is an error of the registry (of any realm: errors made in
 * a jest or vm context count too), optionally with this `code`:
 * `if (isNityError(error, 'ERR_CLOSE_TIMEOUT')) …`.
 */
export function isNityError<C extends NityErrorCode = NityErrorCode>(value: unknown, code?: C): value is NityError<C> {
  if (typeof value !== 'object' || value === null) return false
  const { code: found, message } = value as { code?: unknown; message?: unknown }
  if (typeof message !== 'string' || !isCode(found)) return false
  if (code !== undefined && found !== code) return false
  return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]'
}

/**
 * The native layer's error (an `Error` of Node's own realm whose `code` is
 * the core's) as the registry's error in this realm. Anything else is
 * returned as it is.
 */
export function fromNative(thrown: unknown): unknown {
  if (typeof thrown !== 'object' || thrown === null || !('message' in thrown)) return thrown
  const message = String(thrown.message)
  if ('code' in thrown && isCode(thrown.code)) return nityError(thrown.code, message)
  // The native layer's async methods carry the code at the head of the message.
  const coded = /^(ERR_[A-Z_]+): (.*)$/s.exec(message)
  if (coded !== null && isCode(coded[1])) return nityError(coded[1], coded[2] ?? '')
  return thrown
}

/** The error for an argument that is not what it must be: `<name> must be <expected>, got <what>`. */
export function invalidArgument(code: NityErrorCode, name: string, value: unknown, expected: string): NityError {
  return nityError(code, `${name} must be ${expected}, got ${describe(value)}`)
}

/** Runs a native call; its errors become the registry's errors of this realm. */
export function callNative<T>(run: () => T): T {
  try {
    return run()
  } catch (thrown) {
    throw fromNative(thrown)
  }
}

/** How a value is named in messages: `a number (Infinity)`, `an empty string`, `null`. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'string') return value === '' ? 'an empty string' : `a string ('${value}')`
  if (typeof value === 'number') return `a number (${String(value)})`
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  return `a ${typeof value}`
}

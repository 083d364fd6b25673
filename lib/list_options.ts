// Reading `list(options)`: which client, how many rows, and from which
// cursor on. A wrong option is a TypeError that names it.

import { invalidArgument, nityError } from './errors'
import { rejectUnknownKeys } from './options'

/** `list()` rows per page unless told. */
const DEFAULT_PAGE = 100
const KNOWN = ['clientId', 'limit', 'after']

/** A `list()` call as the core takes it. */
export interface ListQuery {
  clientId: string | undefined
  after: string | undefined
  limit: number
}

/** Reads and checks `list()`'s options; throws the error for the first wrong one. */
export function readListOptions(options: unknown): ListQuery {
  const query: ListQuery = { clientId: undefined, after: undefined, limit: DEFAULT_PAGE }
  if (options === undefined || options === null) return query
  if (typeof options !== 'object') throw invalidArgument('ERR_INVALID_ARG', 'list options', options, 'an object')
  rejectUnknownKeys(options, KNOWN, 'list option', (message) => nityError('ERR_INVALID_ARG', message))
  const given = options as Record<string, unknown>
  if (given.clientId !== undefined) {
    if (typeof given.clientId !== 'string') {
      throw invalidArgument('ERR_INVALID_CLIENT_ID', 'clientId', given.clientId, 'a string')
    }
    query.clientId = given.clientId
  }
  if (given.limit !== undefined) {
    const n = given.limit
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      throw invalidArgument('ERR_INVALID_ARG', 'limit', n, 'a positive integer')
    }
    query.limit = Math.min(n, 0xffff_ffff)
  }
  if (given.after !== undefined) {
    if (typeof given.after !== 'string') {
      throw invalidArgument('ERR_INVALID_CURSOR', 'after', given.after, 'a cursor string from list()')
    }
    query.after = given.after
  }
  return query
}

// nity-session-registry: the session registry of the Nity Bridge SDK.

import type {
  NityCluster,
  NityClusterOptions,
  NitySessionHandle,
  NitySessionLike,
  NitySessionRegistryOptions,
} from './types'
import { NitySessionRegistry as Registry } from './registry'

/**
 * `new NitySessionRegistry(options?)`. The type of `registry.cluster`
 * follows the options: `NityCluster<H>` when the `cluster` option is given,
 * `undefined` when it is not, and `NityCluster<H> | undefined` when the
 * options' type leaves it open.
 */
export interface NitySessionRegistryConstructor {
  new <H extends NitySessionLike = NitySessionHandle>(
    options: NitySessionRegistryOptions & { cluster: NityClusterOptions },
  ): NitySessionRegistry<H> & { readonly cluster: NityCluster<H> }
  new <H extends NitySessionLike = NitySessionHandle>(
    options?: NitySessionRegistryOptions & { cluster?: undefined },
  ): NitySessionRegistry<H> & { readonly cluster: undefined }
  new <H extends NitySessionLike = NitySessionHandle>(options?: NitySessionRegistryOptions): NitySessionRegistry<H>
  readonly prototype: NitySessionRegistry<NitySessionLike>
}

/** A registry of sessions of type `H` (see the class in `registry.ts`). */
export type NitySessionRegistry<H extends NitySessionLike = NitySessionHandle> = Registry<H>
// The class sets `cluster` exactly when the option is given; the
// constructor's overloads say so to the type checker.
export const NitySessionRegistry = Registry as unknown as NitySessionRegistryConstructor

export { isNityError, type NityError, type NityErrorCode } from './errors'
export type {
  NityCluster,
  NityClusterDiagnostics,
  NityClusterNode,
  NityClusterOptions,
  NityClusterSessionInfo,
  NityClusterStats,
  NityNodeDownEvent,
  NitySessionClock,
  NitySessionCloseReason,
  NitySessionClosedEvent,
  NitySessionHandle,
  NitySessionHealth,
  NitySessionInfo,
  NitySessionLike,
  NitySessionListOptions,
  NitySessionPage,
  NitySessionRegistryMetrics,
  NitySessionRegistryOptions,
  NitySessionRegistryStats,
  NitySessionState,
  NityTaskResult,
} from './types'

// nity-session-registry: the session registry of the Nity Bridge SDK.

export { NitySessionRegistry } from './registry'
export type { NityErrorCode } from './errors'
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
  NitySessionListOptions,
  NitySessionPage,
  NitySessionRegistryMetrics,
  NitySessionRegistryOptions,
  NitySessionRegistryStats,
  NitySessionState,
  NityTaskResult,
} from './types'

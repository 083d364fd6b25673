// The native layer, loaded through the loader `napi build` generates
// (`native.js`), with an error that says what to do when it cannot load.

import type * as Binding from '../native'
import { loadFailure, notAnAddon } from './platforms'

function load(): typeof Binding {
  let binding: unknown
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require('../native.js')
  } catch (error) {
    throw loadFailure(error)
  }
  if (
    binding === null ||
    typeof binding !== 'object' ||
    typeof (binding as typeof Binding).NativeRegistry !== 'function'
  ) {
    throw notAnAddon(binding)
  }
  return binding as typeof Binding
}

const binding = load()

export const NativeRegistry: typeof Binding.NativeRegistry = binding.NativeRegistry
export type NativeRegistry = Binding.NativeRegistry
export const NativeCluster: typeof Binding.NativeCluster = binding.NativeCluster
export type NativeCluster = Binding.NativeCluster
export const HealthCode: typeof Binding.HealthCode = binding.HealthCode
export type HealthCode = Binding.HealthCode
export const RunningCode: typeof Binding.RunningCode = binding.RunningCode
export type RunningCode = Binding.RunningCode
export const CloseEnd: typeof Binding.CloseEnd = binding.CloseEnd
export type CloseEnd = Binding.CloseEnd
export type { Admitted, ClusterEvent, ClusterSessionReport, PolicyOptions, Removal } from '../native'

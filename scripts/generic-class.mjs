// napi-rs cannot declare a generic class, so `napi build` writes (into native.d.ts)
// `class NitySessionRegistry` and this step, part of `npm run build`, adds its
// handle type parameter. The methods already speak of `H` through their
// `ts_args_type` / `ts_return_type` attributes.
import { readFileSync, writeFileSync } from 'node:fs'

const file = new URL('../native.d.ts', import.meta.url)
const plain = 'export declare class NitySessionRegistry {'
const generic =
  'export declare class NitySessionRegistry<H extends NitySessionHandle = NitySessionHandle> {'

const source = readFileSync(file, 'utf8')
if (source.includes(generic)) process.exit(0)
const count = source.split(plain).length - 1
if (count !== 1) {
  console.error(`scripts/generic-class.mjs: expected one "${plain}" in native.d.ts, found ${count}`)
  process.exit(1)
}
writeFileSync(file, source.replace(plain, generic))

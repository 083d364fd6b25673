// Builds the benchmark's N-API floor (benchmark/floor) with the same release
// profile as the addon and places it next to the benchmark as floor.node.
import { execFileSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'

const root = new URL('..', import.meta.url)
execFileSync('cargo', ['build', '--release', '-p', 'nity-bench-floor'], { cwd: root, stdio: 'inherit' })
const library =
  {
    darwin: 'libnity_bench_floor.dylib',
    win32: 'nity_bench_floor.dll',
  }[process.platform] ?? 'libnity_bench_floor.so'
copyFileSync(new URL(`target/release/${library}`, root), new URL('benchmark/floor/floor.node', root))

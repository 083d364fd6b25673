// `npm run build [-- --target <triple>] [-- --debug]`: builds the native
// binary for this machine (or for `--target`) with napi-rs, writes the
// generated loader `native.js` and its types `native.d.ts`, and compiles
// the TypeScript surface (`lib/`) into `dist/`.
//
// `npm run build:surface` (`--surface`) only compiles the TypeScript surface,
// over a `native.js`/`native.d.ts` already there: what a CI job that
// downloaded a prebuilt binary and its loader needs.
//
// dist/ is this script's alone: it is emptied before each compile, so a file
// deleted from lib/ never lingers in dist/, nor does anything else left there.
//
// Linux binaries are linked against glibc 2.17 through cargo-zigbuild, so the
// binary built here loads on every glibc Linux from 2.17 on, not only on the
// machine that built it. Without cargo-zigbuild the build still works but
// the binary needs this machine's glibc; the package tests say so.
import { spawnSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const GLIBC = '2.17'

function parseArgs(argv) {
  const options = { target: undefined, release: true, surface: false }
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--target' && i + 1 < argv.length) options.target = argv[++i]
    else if (argv[i] === '--debug') options.release = false
    else if (argv[i] === '--surface') options.surface = true
    else {
      console.error(
        `scripts/build.mjs: unknown argument '${argv[i]}' (expected --target <triple>, --debug or --surface)`,
      )
      process.exit(2)
    }
  }
  if (options.surface && (options.target !== undefined || !options.release)) {
    console.error('scripts/build.mjs: --surface builds no binary, so it takes neither --target nor --debug')
    process.exit(2)
  }
  return options
}

function hostTarget() {
  if (process.platform !== 'linux') return undefined
  const arch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch]
  if (arch === undefined) return undefined
  const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
  return `${arch}-unknown-linux-${glibc ? 'gnu' : 'musl'}`
}

function hasZigbuild() {
  const probe = spawnSync('cargo', ['zigbuild', '--help'], { stdio: 'ignore' })
  return probe.status === 0
}

function buildNative(options) {
  const target = options.target ?? hostTarget()
  const args = ['build', '--platform', '--no-const-enum', '--dts', 'native.d.ts', '--js', 'native.js']
  if (options.release) args.push('--release')

  if (target?.includes('-linux-')) {
    if (hasZigbuild()) {
      args.push('--cross-compile', '--target', target.endsWith('-gnu') ? `${target}.${GLIBC}` : target)
    } else {
      console.warn(
        `scripts/build.mjs: cargo-zigbuild not found; building ${target} against this machine's glibc. ` +
          'The binary will not load on older Linux systems. Install it with `pip install ziglang cargo-zigbuild`.',
      )
      args.push('--target', target)
    }
  } else if (target !== undefined) {
    args.push('--target', target)
  }

  const napi = spawnSync('napi', args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  if (napi.status !== 0) process.exit(napi.status ?? 1)
}

// The TypeScript surface over the native layer, into an empty dist/.
function buildSurface() {
  // lib/native.ts takes its types from the generated native.d.ts.
  if (!existsSync(join(root, 'native.d.ts'))) {
    console.error(
      'scripts/build.mjs: native.d.ts is missing. Run `npm run build` to generate it with the binary, ' +
        'or put the native.js and native.d.ts of a build artifact at the repository root before `npm run build:surface`.',
    )
    process.exit(1)
  }
  rmSync(join(root, 'dist'), { recursive: true, force: true })
  const tsc = spawnSync('tsc', ['-p', 'lib/tsconfig.json'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  })
  process.exit(tsc.status ?? 1)
}

const options = parseArgs(process.argv.slice(2))
if (!options.surface) buildNative(options)
buildSurface()

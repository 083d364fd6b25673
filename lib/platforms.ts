// Which platform this process runs on, which ones the package ships a binary
// for, and the error to throw when the binary for this one did not load.
// Only the loader's failure path uses it, so it requires Node's modules only
// there: in an ES module bundle without `require()` it must still load and
// say what is wrong.

const PACKAGE = 'nity-session-registry'

interface Platform {
  os: string
  cpu: string
  libc?: string
  abi?: string
}

/** `x86_64-unknown-linux-gnu` -> `{ os: 'linux', cpu: 'x64', libc: 'gnu' }`, as Node names them. */
function parseTarget(triple: string): Platform {
  const parts = triple.split('-')
  const cpu =
    ({ x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' } as Record<string, string>)[parts[0]!] ?? parts[0]!
  if (triple.includes('-apple-darwin')) return { os: 'darwin', cpu }
  if (triple.includes('-windows-')) return { os: 'win32', cpu, abi: parts[parts.length - 1]! }
  return { os: parts[2]!, cpu, libc: parts[3]! }
}

/** The platform suffix napi-rs gives binaries and platform packages: `linux-x64-gnu`, `darwin-arm64`. */
function platformName({ os, cpu, libc, abi }: Platform): string {
  return [os, cpu, libc ?? abi].filter(Boolean).join('-')
}

/** The platforms binaries are published for, in `napi.targets` order. */
export function supportedPlatforms(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const manifest = require('../package.json') as { napi: { targets: string[] } }
  return manifest.napi.targets.map((triple) => platformName(parseTarget(triple)))
}

function currentLibc(): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } }
    return report.header?.glibcVersionRuntime ? 'gnu' : 'musl'
  } catch {
    return undefined
  }
}

function currentPlatform(): Platform {
  const os = process.platform
  const cpu = process.arch
  if (os === 'win32') return { os, cpu, abi: 'msvc' }
  const libc = currentLibc()
  return libc === undefined ? { os, cpu } : { os, cpu, libc }
}

/** Names this process's platform for a person: `linux-x64-gnu (os linux, cpu x64, libc glibc)`. */
export function describePlatform(): string {
  const platform = currentPlatform()
  const parts = [`os ${platform.os}`, `cpu ${platform.cpu}`]
  if (platform.os === 'linux') {
    parts.push(`libc ${({ gnu: 'glibc', musl: 'musl' } as Record<string, string>)[platform.libc ?? ''] ?? 'unknown'}`)
  }
  return `${platformName(platform)} (${parts.join(', ')})`
}

function binaryCandidates(name: string): string[] {
  const { existsSync } = require('node:fs') as typeof import('node:fs')
  const { join } = require('node:path') as typeof import('node:path')
  const candidates = [join(__dirname, '..', `${PACKAGE}.${name}.node`)]
  try {
    candidates.push(require.resolve(`${PACKAGE}-${name}`))
  } catch {
    // Not installed: that is what the message will say.
  }
  return candidates.filter((file) => existsSync(file))
}

function causeMessages(error: unknown): string[] {
  const messages: string[] = []
  let cause = (error as { cause?: unknown } | null)?.cause
  while (cause !== undefined && cause !== null && messages.length < 10) {
    messages.unshift(String((cause as { message?: unknown }).message ?? cause))
    cause = (cause as { cause?: unknown }).cause
  }
  return messages
}

const BUILD_FROM_SOURCE =
  "To build it from source: install Rust (rustup) and Node.js 20.19 or newer, clone the package's repository, " +
  'run `npm ci && npm run build` there, and set NAPI_RS_NATIVE_LIBRARY_PATH to the .node file it wrote ' +
  'before loading nity-session-registry.'

/** The first line of a loader message (Node appends the require stack to "Cannot find module"). */
function firstLine(message: string): string {
  return message.split('\n', 1)[0]!
}

/** The error to throw when the generated loader could not load a binary; `error` is what it threw. */
export function loadFailure(error: unknown): Error {
  const causes = causeMessages(error)
  const dynamicRequire = [(error as { message?: unknown } | null)?.message, ...causes].find(
    (m): m is string => typeof m === 'string' && m.startsWith('Dynamic require of'),
  )
  if (dynamicRequire !== undefined) {
    // An ES module bundle (esbuild --format=esm) has no `require()`; the
    // loader's requires of Node's modules and of the binary fail so.
    const failure = new Error(
      `${PACKAGE} was bundled into an ES module that has no require(), which loading its binary needs ` +
        `(${firstLine(dynamicRequire)}). Give the bundle one: esbuild --banner:js="import { createRequire } ` +
        `from 'node:module'; const require = createRequire(import.meta.url);" (or keep the package out of ` +
        'the bundle: --external:nity-session-registry).',
      { cause: error },
    ) as Error & { code: string }
    failure.code = 'ERR_NATIVE_BINDING_LOAD_FAILED'
    return failure
  }
  const supported = supportedPlatforms()
  const name = platformName(currentPlatform())
  const override = process.env.NAPI_RS_NATIVE_LIBRARY_PATH
  let message: string
  let code: string
  if (override) {
    // The loader tried the override alone (and then its WebAssembly
    // fallbacks, which this package does not ship): its reason is the one.
    code = 'ERR_NATIVE_BINDING_LOAD_FAILED'
    const reasons = causes.filter((m) => m.includes(override) || !m.startsWith('Cannot find')).map(firstLine)
    message =
      `${PACKAGE}: NAPI_RS_NATIVE_LIBRARY_PATH is set to '${override}', and that file did not load` +
      (reasons.length > 0 ? `: ${reasons.join('; ')}.` : '.') +
      ` Point it at the .node file \`npm run build\` wrote for ${describePlatform()}, ` +
      'or unset it to load the binary installed with the package.'
  } else if (!supported.includes(name)) {
    code = 'ERR_UNSUPPORTED_PLATFORM'
    message =
      `${PACKAGE} has no native binary for this platform: ${describePlatform()}. ` +
      `Binaries are published for: ${supported.join(', ')}. ${BUILD_FROM_SOURCE}`
  } else {
    const found = binaryCandidates(name)
    if (found.length === 0) {
      code = 'ERR_NATIVE_BINDING_MISSING'
      message =
        `${PACKAGE} supports ${describePlatform()}, but its binary package ${PACKAGE}-${name} is not installed. ` +
        'npm installs it as an optional dependency: install again without --omit=optional or --no-optional, ' +
        'and on the machine that runs the code (a lockfile or node_modules made on another platform lacks it).'
    } else {
      code = 'ERR_NATIVE_BINDING_LOAD_FAILED'
      const reasons = causes.filter((m) => !m.startsWith('Cannot find module'))
      message =
        `${PACKAGE}: the binary for ${describePlatform()} (${found[0]}) did not load` +
        (reasons.length > 0 ? `: ${reasons.join('; ')}` : '.') +
        ` Linux binaries need glibc 2.17 or newer (gnu) or musl (musl). ${BUILD_FROM_SOURCE}`
    }
  }
  const failure = new Error(message, { cause: error }) as Error & { code: string }
  failure.code = code
  return failure
}

/** The error for a binding that loaded as something other than the addon (a bundler rewrote it). */
export function notAnAddon(binding: unknown): Error {
  const got = binding === null ? 'null' : typeof binding
  const error = new Error(
    `nity-session-registry: the native binary for ${describePlatform()} did not load as a Node.js addon ` +
      `(the loader got ${got}). If you bundle this package, mark it external ` +
      '(esbuild --external:nity-session-registry, webpack externals) or copy the .node file as it is ' +
      '(esbuild --loader:.node=copy).',
  ) as Error & { code: string }
  error.code = 'ERR_NATIVE_BINDING_LOAD_FAILED'
  return error
}

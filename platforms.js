'use strict'
// Which platform this process runs on, which ones the package ships a binary
// for, and the error to throw when the binary for this one did not load.
// Only the entry's failure path uses it.

const { existsSync } = require('node:fs')
const { join } = require('node:path')

const PACKAGE = 'nity-session-registry'

/** `x86_64-unknown-linux-gnu` -> `{ os: 'linux', cpu: 'x64', libc: 'gnu' }`, as Node names them. */
function parseTarget(triple) {
  const [arch] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }[arch] ?? arch
  if (triple.includes('-apple-darwin')) return { os: 'darwin', cpu }
  if (triple.includes('-windows-')) return { os: 'win32', cpu, abi: triple.split('-').pop() }
  const [, , os, libc] = triple.split('-')
  return { os, cpu, libc }
}

/** The platform suffix napi-rs gives binaries and platform packages: `linux-x64-gnu`, `darwin-arm64`. */
function platformName({ os, cpu, libc, abi }) {
  return [os, cpu, libc ?? abi].filter(Boolean).join('-')
}

function supportedPlatforms() {
  return require('./package.json').napi.targets.map((triple) => platformName(parseTarget(triple)))
}

function currentLibc() {
  if (process.platform !== 'linux') return undefined
  try {
    const header = process.report.getReport().header
    return header.glibcVersionRuntime ? 'gnu' : 'musl'
  } catch {
    return undefined
  }
}

function currentPlatform() {
  const os = process.platform
  const cpu = process.arch
  if (os === 'win32') return { os, cpu, abi: 'msvc' }
  return { os, cpu, libc: currentLibc() }
}

/** Names this process's platform for a person: `linux-x64-gnu (os linux, cpu x64, libc glibc)`. */
function describePlatform() {
  const platform = currentPlatform()
  const libc = { gnu: 'glibc', musl: 'musl' }[platform.libc]
  const parts = [`os ${platform.os}`, `cpu ${platform.cpu}`]
  if (platform.os === 'linux') parts.push(`libc ${libc ?? 'unknown'}`)
  return `${platformName(platform)} (${parts.join(', ')})`
}

function binaryCandidates(name) {
  const candidates = [join(__dirname, `${PACKAGE}.${name}.node`)]
  try {
    candidates.push(require.resolve(`${PACKAGE}-${name}`))
  } catch {
    // Not installed: that is what the message will say.
  }
  return candidates.filter((file) => existsSync(file))
}

function causeMessages(error) {
  const messages = []
  for (let cause = error?.cause; cause && messages.length < 10; cause = cause.cause) {
    messages.unshift(String(cause.message ?? cause))
  }
  return messages
}

const BUILD_FROM_SOURCE =
  'To build it from source: install Rust (rustup) and Node.js 20.19 or newer, clone the package\'s repository, ' +
  'run `npm ci && npm run build` there, and set NAPI_RS_NATIVE_LIBRARY_PATH to the .node file it wrote ' +
  'before loading nity-session-registry.'

/** The error to throw when `native.js` could not load a binary; `error` is what it threw. */
function loadFailure(error) {
  const supported = supportedPlatforms()
  const name = platformName(currentPlatform())
  let message
  let code
  if (!supported.includes(name)) {
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
        `npm installs it as an optional dependency: install again without --omit=optional or --no-optional, ` +
        `and on the machine that runs the code (a lockfile or node_modules made on another platform lacks it).`
    } else {
      code = 'ERR_NATIVE_BINDING_LOAD_FAILED'
      const reasons = causeMessages(error).filter((m) => !m.startsWith('Cannot find module'))
      message =
        `${PACKAGE}: the binary for ${describePlatform()} (${found[0]}) did not load` +
        (reasons.length > 0 ? `: ${reasons.join('; ')}` : '.') +
        ` Linux binaries need glibc 2.17 or newer (gnu) or musl (musl). ${BUILD_FROM_SOURCE}`
    }
  }
  const failure = new Error(message, { cause: error })
  failure.code = code
  return failure
}

module.exports = { describePlatform, loadFailure, supportedPlatforms }

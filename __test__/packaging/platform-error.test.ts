import { afterAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostPlatform } from '../helpers/platform'

const root = join(__dirname, '..', '..')
const fixture = join(__dirname, '..', 'fixtures', 'loading', 'fake-platform.cjs')
const supported = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']

const host = hostPlatform()
const binary = join(root, host.binary)

interface Outcome {
  loaded: boolean
  total?: number
  isError?: boolean
  name?: string
  code?: string
  message?: string
  hasCause?: boolean
}

function load(platform: string, arch: string, options: { entry?: string; env?: NodeJS.ProcessEnv } = {}): Outcome {
  const args = [fixture, platform, arch, ...(options.entry ? [options.entry] : [])]
  const env = { ...process.env, ...options.env }
  if (!options.env?.NAPI_RS_NATIVE_LIBRARY_PATH) delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  return JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000, env })) as Outcome
}

const temporary: string[] = []
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true })
})

describe('loading on a platform without a binary', () => {
  it('throws ERR_UNSUPPORTED_PLATFORM naming the os and cpu, listing the supported platforms, saying how to build', () => {
    const outcome = load('freebsd', 'x64')
    expect(outcome).toMatchObject({
      loaded: false,
      isError: true,
      name: 'Error',
      code: 'ERR_UNSUPPORTED_PLATFORM',
      hasCause: true,
    })
    expect(outcome.message).toContain('freebsd-x64 (os freebsd, cpu x64)')
    for (const name of supported) expect(outcome.message).toContain(name)
    expect(outcome.message).toContain('build it from source')
    expect(outcome.message).toContain('npm run build')
    expect(outcome.message).toContain('NAPI_RS_NATIVE_LIBRARY_PATH')
    expect(outcome.message).not.toContain('npm has a bug')
  })

  it('names the libc on Linux', () => {
    const outcome = load('linux', 'ppc64')
    expect(outcome.code).toBe('ERR_UNSUPPORTED_PLATFORM')
    expect(outcome.message).toMatch(/linux-ppc64-(gnu|musl) \(os linux, cpu ppc64, libc (glibc|musl)\)/)
  })

  it('says which platform package is missing on a supported platform without its binary', () => {
    const outcome = load('darwin', 'arm64')
    expect(outcome).toMatchObject({ loaded: false, isError: true, code: 'ERR_NATIVE_BINDING_MISSING' })
    expect(outcome.message).toContain('darwin-arm64 (os darwin, cpu arm64)')
    expect(outcome.message).toContain('nity-session-registry-darwin-arm64 is not installed')
    expect(outcome.message).toContain('--omit=optional')
  })

  it('loads a binary built from source through NAPI_RS_NATIVE_LIBRARY_PATH, as the error says', () => {
    const outcome = load('freebsd', 'x64', { env: { NAPI_RS_NATIVE_LIBRARY_PATH: binary } })
    expect(outcome).toEqual({ loaded: true, total: 1 })
  })

  it('says why a binary that is there did not load', () => {
    // A copy of the package whose binary is not a shared library.
    const dir = mkdtempSync(join(tmpdir(), 'nity-broken-binary-'))
    temporary.push(dir)
    for (const file of ['index.js', 'dist', 'native.js', 'package.json']) {
      cpSync(join(root, file), join(dir, file), { recursive: true })
    }
    const broken = join(dir, host.binary)
    writeFileSync(broken, 'not a shared library')
    const outcome = load(process.platform, process.arch, { entry: join(dir, 'index.js') })
    expect(outcome).toMatchObject({ loaded: false, code: 'ERR_NATIVE_BINDING_LOAD_FAILED' })
    expect(outcome.message).toContain(`${host.name} ${host.described}`)
    // The operating system's own reason follows the path of the binary.
    expect(outcome.message).toMatch(new RegExp(`${broken.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}\\) did not load: \\S`))
  })

  describe('with NAPI_RS_NATIVE_LIBRARY_PATH set to a file that does not load', () => {
    it('names the variable, its value and the real reason when the file is missing', () => {
      const missing = join(tmpdir(), 'nity-no-such-binary.node')
      const outcome = load(process.platform, process.arch, { env: { NAPI_RS_NATIVE_LIBRARY_PATH: missing } })
      expect(outcome).toMatchObject({ loaded: false, isError: true, code: 'ERR_NATIVE_BINDING_LOAD_FAILED' })
      expect(outcome.message).toContain(`NAPI_RS_NATIVE_LIBRARY_PATH is set to '${missing}'`)
      expect(outcome.message).toContain(`Cannot find module '${missing}'`)
      expect(outcome.message).not.toContain('Require stack')
      expect(outcome.message).not.toContain('wasi')
      // The installed binary is fine; it is not blamed.
      expect(outcome.message).not.toContain(host.binary)
    })

    it("gives the loader's reason for a file that is not a binary", () => {
      const dir = mkdtempSync(join(tmpdir(), 'nity-bad-override-'))
      temporary.push(dir)
      const bad = join(dir, 'bad.node')
      writeFileSync(bad, 'not a shared library')
      const outcome = load(process.platform, process.arch, { env: { NAPI_RS_NATIVE_LIBRARY_PATH: bad } })
      expect(outcome.code).toBe('ERR_NATIVE_BINDING_LOAD_FAILED')
      expect(outcome.message).toMatch(
        new RegExp(`that file did not load: ${bad.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}: \\S`),
      )
    })

    it('on an unsupported platform does not advise setting the variable that is already set', () => {
      const missing = join(tmpdir(), 'nity-no-such-binary.node')
      const outcome = load('freebsd', 'x64', { env: { NAPI_RS_NATIVE_LIBRARY_PATH: missing } })
      expect(outcome.code).toBe('ERR_NATIVE_BINDING_LOAD_FAILED')
      expect(outcome.message).toContain(`NAPI_RS_NATIVE_LIBRARY_PATH is set to '${missing}'`)
      expect(outcome.message).not.toContain('set NAPI_RS_NATIVE_LIBRARY_PATH')
    })
  })
})

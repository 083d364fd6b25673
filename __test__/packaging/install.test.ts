import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installPacked, listTarball, mainTarballFiles, type Packed } from '../helpers/packed'
import { hostPlatform } from '../helpers/platform'

const root = join(__dirname, '..', '..')
const consumer = join(__dirname, '..', 'fixtures', 'consumer')
const host = hostPlatform()

function node(args: string[], cwd: string): unknown {
  return JSON.parse(execFileSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 30_000 }))
}

describe('the packed package, installed into a fresh project', () => {
  let work: string
  let app: string
  let packed: Packed

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nity-install-'))
    ;({ packed, app } = installPacked(work))
    for (const file of ['use.cjs', 'use.mjs', 'use.ts', 'tsconfig.json'])
      copyFileSync(join(consumer, file), join(app, file))
  }, 180_000)

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('the main tarball holds the entry, the surface with its types, maps and sources, the loader, the docs, and no binary', () => {
    // The declaration maps point into lib/*.ts, so an editor's go-to-definition lands in the source.
    expect(listTarball(packed.main)).toEqual(mainTarballFiles(join(root, 'lib')))
  })

  it("this platform's tarball holds the binary, README and LICENSE", () => {
    expect(listTarball(packed.platforms[host.name]!)).toEqual(
      ['LICENSE', 'README.md', host.binary, 'package.json'].sort(),
    )
  })

  it('the main package depends on every platform package, optionally, at its own version', () => {
    const manifest = JSON.parse(
      execFileSync('tar', ['-xzOf', packed.main, 'package/package.json'], { encoding: 'utf8' }),
    ) as { version: string; optionalDependencies: Record<string, string>; devDependencies?: unknown; scripts?: unknown }
    const version = manifest.version
    expect(manifest.optionalDependencies).toEqual({
      'nity-session-registry-linux-x64-gnu': version,
      'nity-session-registry-linux-x64-musl': version,
      'nity-session-registry-linux-arm64-gnu': version,
      'nity-session-registry-darwin-x64': version,
      'nity-session-registry-darwin-arm64': version,
      'nity-session-registry-win32-x64-msvc': version,
    })
    expect(manifest.devDependencies).toBeUndefined()
    expect(manifest.scripts).toBeUndefined()
  })

  it('works with require(), exporting only the API, with the binary from the platform package', () => {
    expect(node(['use.cjs', host.name], app)).toEqual({
      exports: ['NitySessionRegistry', 'isNityError'],
      count: 1,
      closed: 1,
      binary: join(app, 'node_modules', `nity-session-registry-${host.name}`, host.binary),
    })
  })

  it('works with import: named, namespace and default', () => {
    expect(node(['use.mjs'], app)).toEqual({
      named: 'function',
      namespace: ['NitySessionRegistry', 'default', 'isNityError'],
      same: true,
      total: 1,
    })
  })

  it('type-checks a consumer under tsc --strict with its types', () => {
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], {
      cwd: app,
      encoding: 'utf8',
      timeout: 120_000,
    })
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.status).toBe(0)
  })
})

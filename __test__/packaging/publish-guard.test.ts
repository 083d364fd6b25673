import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseTriple } from '@napi-rs/cli'

const root = join(__dirname, '..', '..')
const guard = join(root, 'scripts', 'publish-guard.mjs')

interface Manifest {
  name: string
  version: string
  napi: { targets: string[] }
  optionalDependencies?: Record<string, string>
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T

const REFUSAL = 'lacks the optionalDependencies that install its binaries'

// package.json's prepublishOnly: `npm publish` at the root would publish a
// main package without its platform packages, so users would get no binary.
describe('the publish guard', () => {
  let work: string
  let manifest: Manifest
  let platformPackages: string[]

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nity-guard-'))
    manifest = readJson<Manifest>(join(root, 'package.json'))
    platformPackages = manifest.napi.targets.map(
      (triple) =>
        readJson<{ name: string }>(join(root, 'npm', parseTriple(triple).platformArchABI, 'package.json')).name,
    )
  })

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  function check(optionalDependencies?: Record<string, string>): ReturnType<typeof spawnSync> {
    const file = join(work, `package-${Math.random().toString(36).slice(2)}.json`)
    writeFileSync(file, JSON.stringify({ ...manifest, optionalDependencies }))
    return spawnSync(process.execPath, [guard, file], { encoding: 'utf8', timeout: 30_000 })
  }

  const all = (version: string): Record<string, string> =>
    Object.fromEntries(platformPackages.map((name) => [name, version]))

  it("refuses the repository's own package.json, saying how to publish instead", () => {
    const run = spawnSync(process.execPath, [guard, join(root, 'package.json')], { encoding: 'utf8', timeout: 30_000 })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain(REFUSAL)
    expect(run.stderr).toContain('npm run release')
    expect(run.stderr).toContain('npm run pack')
  })

  it('passes a manifest that depends on every platform package at its version', () => {
    const run = check(all(manifest.version))
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
  })

  it('names the platform packages that are missing or at another version', () => {
    const [first, second, ...rest] = platformPackages
    const dependencies = all(manifest.version)
    delete dependencies[first!]
    dependencies[second!] = '0.0.1'
    const run = check(dependencies)
    expect(run.status).toBe(1)
    expect(run.stderr).toContain(`${first}@${manifest.version}`)
    expect(run.stderr).toContain(`${second}@${manifest.version}`)
    for (const name of rest) expect(run.stderr).not.toContain(`${name}@`)
  })

  it('stops npm publish --dry-run at the root, as prepublishOnly', () => {
    // Offline and with a registry nobody listens on: should the guard ever
    // let it through, this dry run still reaches nothing.
    const npm = spawnSync('npm', ['publish', '--dry-run'], {
      cwd: root,
      env: { ...process.env, npm_config_offline: 'true', npm_config_registry: 'http://127.0.0.1:9/' },
      encoding: 'utf8',
      timeout: 120_000,
      shell: process.platform === 'win32',
    })
    expect(npm.status).not.toBe(0)
    expect(npm.stderr).toContain(REFUSAL)
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installPacked } from '../helpers/packed'
import { hostPlatform } from '../helpers/platform'

const root = join(__dirname, '..', '..')
const fixtures = join(__dirname, '..', 'fixtures', 'extension')
const esbuild = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'esbuild.cmd' : 'esbuild')
const host = hostPlatform()

interface Outcome {
  ok: boolean
  sessions?: number
  cleaned?: number
  closed?: string[]
  code?: string
  message?: string
}

// A VS Code-style extension entry bundled with esbuild's CLI, with the flags
// the README gives, from a project that installed the packed package.
describe('bundling an extension that uses the registry with esbuild', () => {
  let work: string
  let app: string

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nity-bundle-'))
    ;({ app } = installPacked(work))
    copyFileSync(join(fixtures, 'extension.ts'), join(app, 'extension.ts'))
  }, 180_000)

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  function bundle(outdir: string, flags: string[], format: 'cjs' | 'esm' = 'cjs'): void {
    const result = spawnSync(
      esbuild,
      [
        'extension.ts',
        '--bundle',
        '--platform=node',
        `--format=${format}`,
        ...(format === 'esm' ? ['--out-extension:.js=.mjs'] : []),
        `--outdir=${outdir}`,
        '--log-level=error',
        ...flags,
      ],
      { cwd: app, encoding: 'utf8', timeout: 60_000, shell: process.platform === 'win32' },
    )
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  }

  /** Runs the bundle from a directory of its own, away from the project's node_modules unless `from` is given. */
  function run(bundleDir: string, from?: string, format: 'cjs' | 'esm' = 'cjs'): Outcome {
    let dir = bundleDir
    if (from === undefined) {
      dir = join(work, `shipped-${readdirSync(work).length}`)
      mkdirSync(dir)
      cpSync(bundleDir, dir, { recursive: true })
    }
    const [runner, entry] = format === 'esm' ? ['run-bundle.mjs', 'extension.mjs'] : ['run-bundle.cjs', 'extension.js']
    const out = execFileSync(process.execPath, [join(fixtures, runner), join(dir, entry)], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
    })
    return JSON.parse(out) as Outcome
  }

  const works = { ok: true, sessions: 2, cleaned: 2, closed: ['chat-1', 'chat-2'] }

  it('runs with --external:nity-session-registry, the package loaded from node_modules next to the bundle', () => {
    const outdir = join(app, 'out-external')
    bundle(outdir, ['--external:nity-session-registry'])
    expect(run(outdir, app)).toEqual(works)
  })

  it('runs with --loader:.node=copy, shipped alone: the binary is copied next to the bundle', () => {
    const outdir = join(work, 'out-copy')
    bundle(outdir, ['--loader:.node=copy'])
    expect(readdirSync(outdir).filter((f) => f.endsWith('.node'))).toHaveLength(1)
    expect(run(outdir)).toEqual(works)
  })

  it('says how to bundle it when the .node file was bundled as a path (--loader:.node=file)', () => {
    const outdir = join(work, 'out-file')
    bundle(outdir, ['--loader:.node=file'])
    const outcome = run(outdir)
    expect(outcome.ok).toBe(false)
    expect(outcome.code).toBe('ERR_NATIVE_BINDING_LOAD_FAILED')
    expect(outcome.message).toContain(host.name)
    expect(outcome.message).toContain('--external:nity-session-registry')
    expect(outcome.message).toContain('--loader:.node=copy')
  })

  describe('as an ES module (--format=esm)', () => {
    /** The README's banner: an ES module bundle gets the require() the package's loader needs. */
    const banner =
      "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"

    it('runs with --loader:.node=copy and the createRequire banner, shipped alone', () => {
      const outdir = join(work, 'out-esm-copy')
      bundle(outdir, ['--loader:.node=copy', banner], 'esm')
      expect(readdirSync(outdir).filter((f) => f.endsWith('.node'))).toHaveLength(1)
      expect(run(outdir, undefined, 'esm')).toEqual(works)
    })

    it('runs with --external:nity-session-registry, the package imported from node_modules', () => {
      const outdir = join(app, 'out-esm-external')
      bundle(outdir, ['--external:nity-session-registry'], 'esm')
      expect(run(outdir, app, 'esm')).toEqual(works)
    })

    it('without the banner, says that the bundle lacks require() and how to give it one', () => {
      const outdir = join(work, 'out-esm-no-banner')
      bundle(outdir, ['--loader:.node=copy'], 'esm')
      const outcome = run(outdir, undefined, 'esm')
      expect(outcome.ok).toBe(false)
      expect(outcome.code).toBe('ERR_NATIVE_BINDING_LOAD_FAILED')
      expect(outcome.message).toContain('bundled into an ES module that has no require()')
      expect(outcome.message).toContain('createRequire(import.meta.url)')
      expect(outcome.message).toContain('--external:nity-session-registry')
    })
  })
})

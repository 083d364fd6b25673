import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { hostPlatform } from '../helpers/platform'
import { listTarball } from '../helpers/packed'

const root = join(__dirname, '..', '..')
const host = hostPlatform()

// A pack runs npm three times; a loaded two-core machine is slow at it.
const SLOW = 180_000

/** What the repository holds that a pack neither reads nor may touch here. */
const NOT_COPIED = new Set([
  '.git',
  'node_modules',
  'target',
  'release',
  'artifacts',
  '.vitest',
  join('__test__', '.tmp'),
])

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

// `npm run pack` with its defaults, in a copy of this working tree (built
// files included): the stray files these tests leave must not reach the
// packs other test files make at the root at the same time.
describe('npm run pack', () => {
  let work: string
  let tree: string
  let temp: string

  const childEnv = (): NodeJS.ProcessEnv => ({
    ...process.env,
    npm_config_offline: 'true',
    TMPDIR: temp,
    TMP: temp,
    TEMP: temp,
  })

  /** `npm run pack -- ...args` in the copy, offline, with its temporary directories in `temp`. */
  function pack(args: string[] = []): Run {
    const result = spawnSync('npm', ['run', 'pack', '--', ...args], {
      cwd: tree,
      env: childEnv(),
      encoding: 'utf8',
      timeout: SLOW,
      shell: process.platform === 'win32',
    })
    return { status: result.status, stdout: result.stdout, stderr: result.stderr }
  }

  function packed(run: Run): { main: string; platforms: Record<string, string> } {
    expect(run.status, run.stderr).toBe(0)
    return JSON.parse(run.stdout.trim().split('\n').pop()!)
  }

  /** What release/ holds. */
  const released = (): string[] => readdirSync(join(tree, 'release')).sort()

  /** The tarballs a pack here writes: the main package's and this platform's. */
  function expectedTarballs(): string[] {
    const { name, version } = JSON.parse(readFileSync(join(tree, 'package.json'), 'utf8')) as {
      name: string
      version: string
    }
    return [`${name}-${version}.tgz`, `${name}-${host.name}-${version}.tgz`].sort()
  }

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nity-pack-test-'))
    tree = join(work, 'tree')
    temp = join(work, 'tmp')
    mkdirSync(temp)
    // This machine's binary only, as `npm run build` leaves it: no binaries a release put into npm/.
    const copied = (from: string): boolean => {
      const path = relative(root, from)
      return !NOT_COPIED.has(path) && (!path.endsWith('.node') || path === host.binary)
    }
    cpSync(root, tree, { recursive: true, filter: copied })
    // pack.mjs imports @napi-rs/cli; a junction needs no privilege on Windows.
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'), 'junction')
  }, 120_000)

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it(
    'twice in a row writes the same tarballs to release/, the second holding the same files as the first',
    () => {
      const first = packed(pack())
      const firstFiles = listTarball(first.main)
      const second = packed(pack())
      expect(second.main).toBe(join(tree, 'release', expectedTarballs()[0]!))
      expect(listTarball(second.main)).toEqual(firstFiles)
      expect(released()).toEqual(expectedTarballs())
      expect(firstFiles.filter((file) => file.endsWith('.tgz') || file.includes('staging'))).toEqual([])
    },
    SLOW,
  )

  it(
    'empties release/ of old tarballs first, so none of them is shipped or left there',
    () => {
      mkdirSync(join(tree, 'release'), { recursive: true })
      writeFileSync(join(tree, 'release', 'stray.tgz'), 'not a tarball')
      writeFileSync(join(tree, 'release', 'nity-session-registry-0.0.1.tgz'), 'not a tarball')
      const run = packed(pack())
      expect(listTarball(run.main).filter((file) => file.endsWith('.tgz'))).toEqual([])
      expect(released()).toEqual(expectedTarballs())
    },
    SLOW,
  )

  it(
    'refuses a main package that would ship a staging folder, a tarball or a binary, and leaves no tarball',
    () => {
      const staging = join(tree, 'dist', 'staging')
      mkdirSync(join(staging, 'main'), { recursive: true })
      writeFileSync(join(staging, 'x.tgz'), 'not a tarball')
      writeFileSync(join(staging, 'main', 'index.js'), '')
      writeFileSync(join(tree, 'dist', host.binary), 'not a binary')
      try {
        const run = pack()
        expect(run.status).not.toBe(0)
        expect(run.stderr).toContain('the main package would ship files no user should get')
        expect(run.stderr).toContain('dist/staging/x.tgz: a tarball')
        expect(run.stderr).toContain('dist/staging/main/index.js: in a staging folder')
        expect(run.stderr).toContain(`dist/${host.binary}: a native binary`)
        expect(run.stderr).toContain('npm run build')
        expect(released()).toEqual([])
      } finally {
        rmSync(staging, { recursive: true, force: true })
        rmSync(join(tree, 'dist', host.binary), { force: true })
      }
    },
    SLOW,
  )

  it(
    'refuses to write its tarballs into a folder the main package ships',
    () => {
      const run = pack(['--out', 'dist'])
      expect(run.status).not.toBe(0)
      expect(run.stderr).toContain('--out dist is a folder the main package ships')
      expect(readdirSync(join(tree, 'dist')).filter((file) => file.endsWith('.tgz'))).toEqual([])
    },
    SLOW,
  )

  it(
    'stages in a temporary directory that it removes, and leaves no tarball when it fails halfway',
    () => {
      // The child's temporary directory is `temp`, so what it leaves there is seen.
      expect(
        execFileSync(process.execPath, ['-p', 'require("os").tmpdir()'], { env: childEnv(), encoding: 'utf8' }).trim(),
      ).toBe(temp)
      packed(pack())
      expect(readdirSync(temp).filter((entry) => entry.startsWith('nity-pack-'))).toEqual([])

      // --all wants every target's binary: this platform's is packed, then the next one is missing.
      const run = pack(['--all'])
      expect(run.status).not.toBe(0)
      expect(run.stderr).toMatch(/no binary for \S+: neither npm\//)
      expect(readdirSync(temp).filter((entry) => entry.startsWith('nity-pack-'))).toEqual([])
      expect(released()).toEqual([])
    },
    SLOW,
  )
})

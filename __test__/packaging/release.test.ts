import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseTriple } from '@napi-rs/cli'
import { hostPlatform } from '../helpers/platform'
import { listTarball, mainTarballFiles } from '../helpers/packed'

const root = join(__dirname, '..', '..')
const host = hostPlatform()

// A release is slow on a loaded two-core machine: npm ci, tsc, seven packs
// and seven dry-run publishes.
const SLOW = 600_000

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Runs npm in `cwd` as the release workflow would, but offline: every npm
 * command (npm ci, npm pack, npm publish --dry-run) works from the files and
 * the npm cache alone, so nothing here can reach a registry. Without it,
 * npm publish --dry-run asks the registry whether the version exists.
 */
function npm(args: string[], cwd: string, env: Record<string, string> = {}): Run {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, npm_config_offline: 'true', ...env }
  // A dry run must not try to sign provenance or exchange an OIDC token.
  for (const name of ['NPM_CONFIG_PROVENANCE', 'npm_config_provenance', 'ACTIONS_ID_TOKEN_REQUEST_URL']) {
    delete childEnv[name]
  }
  const result = spawnSync('npm', args, {
    cwd,
    env: childEnv,
    encoding: 'utf8',
    timeout: SLOW / 2,
    shell: process.platform === 'win32',
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** `+ name@version`, the line npm publish prints for each package it published (or would have). */
function published(stdout: string): string[] {
  return stdout.split('\n').flatMap((line) => {
    const match = /^\+ (\S+@\S+)$/.exec(line.trim())
    return match ? [match[1]!] : []
  })
}

/** node:20-alpine, one of the release workflow's test containers, has no git. */
const noGit = spawnSync('git', ['--version']).status !== 0

// The release workflow's publish job, on a fresh clone of this repository's
// committed HEAD (what the workflow checks out), up to npm publish --dry-run.
// It needs git for the clone; the publish job itself runs on ubuntu-latest.
describe.skipIf(noGit)('npm run release, as the release workflow runs it (skipped where git is missing)', () => {
  let work: string
  let clone: string
  let manifest: { name: string; version: string; napi: { targets: string[] } }
  let platforms: string[]
  let release: Run

  beforeAll(() => {
    for (const file of ['native.js', 'native.d.ts', host.binary]) {
      if (!existsSync(join(root, file))) throw new Error(`${file} is missing at the repository root: run npm run build`)
    }
    work = mkdtempSync(join(tmpdir(), 'nity-release-'))
    clone = join(work, 'clone')
    // The checkout may belong to another user (a test container mounting
    // the runner's workspace), and git then refuses to clone it: this clone
    // alone trusts it, through a global configuration of its own. git clears
    // `-c` settings for the local clone's upload-pack, but reads this one
    // (GIT_CONFIG_GLOBAL from git 2.32, HOME before).
    const gitHome = join(work, 'git-home')
    mkdirSync(gitHome)
    writeFileSync(join(gitHome, '.gitconfig'), '[safe]\n\tdirectory = *\n')
    execFileSync('git', ['clone', '--quiet', root, clone], {
      env: { ...process.env, HOME: gitHome, GIT_CONFIG_GLOBAL: join(gitHome, '.gitconfig') },
      stdio: 'pipe', // its hints, not the test's output; an error carries them
      timeout: 120_000,
    })
    const install = npm(['ci', '--no-audit', '--no-fund'], clone)
    if (install.status !== 0) throw new Error(`npm ci in the clone failed:\n${install.stderr}`)

    manifest = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8'))
    platforms = manifest.napi.targets.map((triple) => parseTriple(triple).platformArchABI)
    // What actions/download-artifact writes: one folder per build job. This
    // machine's binary is the one built at the root; the other targets cannot
    // be built here, so their binaries are placeholder bytes, which is all a
    // dry run needs (napi artifacts and npm pack only copy them).
    for (const platform of platforms) {
      const artifact = join(clone, 'artifacts', `bindings-${platform}`)
      mkdirSync(artifact, { recursive: true })
      const binary = join(artifact, `${manifest.name}.${platform}.node`)
      if (platform === host.name) copyFileSync(join(root, host.binary), binary)
      else writeFileSync(binary, `PLACEHOLDER, not a binary: ${platform} cannot be built on this machine\n`)
      for (const file of ['native.js', 'native.d.ts']) copyFileSync(join(root, file), join(artifact, file))
    }

    release = npm(['run', 'release', '--', '--dry-run'], clone, { GITHUB_REF_NAME: `v${manifest.version}` })
  }, SLOW)

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('succeeds', () => {
    expect(release.status, release.stderr).toBe(0)
  })

  it('publishes (dry run) every platform package, then the main package last, all at the version', () => {
    const platformPackages = platforms.map((platform) => `${manifest.name}-${platform}@${manifest.version}`)
    const names = published(release.stdout)
    expect(names.slice(0, -1).sort()).toEqual(platformPackages.sort())
    expect(names.at(-1)).toBe(`${manifest.name}@${manifest.version}`)
  })

  it('the main tarball holds what a user needs: the entry, the surface and its sources, the loader, the docs', () => {
    const tarballs = readdirSync(join(clone, 'release'))
    expect(tarballs).toContain(`${manifest.name}-${manifest.version}.tgz`)
    const files = listTarball(join(clone, 'release', `${manifest.name}-${manifest.version}.tgz`))

    expect(files).toEqual(mainTarballFiles(join(clone, 'lib')))
  })

  it(
    'fails, publishing nothing, when the tag does not name the version',
    () => {
      const wrong = npm(['run', 'release', '--', '--dry-run'], clone, { GITHUB_REF_NAME: 'v0.0.0-wrong' })
      expect(wrong.status).not.toBe(0)
      expect(wrong.stderr).toContain(`the tag v0.0.0-wrong does not name the package's version ${manifest.version}`)
      expect(published(wrong.stdout)).toEqual([])
    },
    SLOW,
  )

  it(
    'takes --tag over GITHUB_REF_NAME',
    () => {
      const wrong = npm(['run', 'release', '--', '--dry-run', '--tag', 'v0.0.0-wrong'], clone, {
        GITHUB_REF_NAME: `v${manifest.version}`,
      })
      expect(wrong.status).not.toBe(0)
      expect(wrong.stderr).toContain('the tag v0.0.0-wrong does not name')
    },
    SLOW,
  )
})

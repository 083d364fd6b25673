import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = join(__dirname, '..', '..')

describe('the lockfile', () => {
  it('installs with npm ci: package.json and package-lock.json agree on every package, optional ones included', () => {
    // A copy, so that npm ci cannot touch this checkout's node_modules; dry
    // and offline, so that it only checks the lockfile against package.json.
    const dir = mkdtempSync(join(tmpdir(), 'nity-lockfile-'))
    try {
      copyFileSync(join(root, 'package.json'), join(dir, 'package.json'))
      copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'))
      const npm = spawnSync('npm', ['ci', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 120_000,
      })
      const missing = npm.stderr.split('\n').filter((line) => line.includes('Missing:') || line.includes('Invalid:'))
      expect(missing).toEqual([])
      expect(npm.status, npm.stderr).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hostPlatform } from './platform'

const root = join(__dirname, '..', '..')

/** The tarballs `npm run pack` wrote. */
export interface Packed {
  main: string
  platforms: Record<string, string>
}

/**
 * Packs the working tree with `npm run pack`'s script and installs the main
 * tarball and this platform's into a new project under `work`, as a user
 * would: from the files alone, with an empty npm cache and no network.
 * Returns the tarballs and the project's directory.
 *
 * The tarballs go to `work/tarballs`, not to release/: test files run at the
 * same time, and each pack empties its output folder of old tarballs first.
 */
export function installPacked(work: string): { packed: Packed; app: string } {
  const pack = spawnSync(process.execPath, [join(root, 'scripts', 'pack.mjs'), '--out', join(work, 'tarballs')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  })
  if (pack.status !== 0) throw new Error(`scripts/pack.mjs failed:\n${pack.stderr}`)
  const packed = JSON.parse(pack.stdout.trim().split('\n').pop()!) as Packed
  const platform = packed.platforms[hostPlatform().name]
  if (platform === undefined) throw new Error(`npm run pack made no package for ${hostPlatform().name}: build first`)

  const app = join(work, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  const cache = join(work, 'empty-cache')
  const npm = spawnSync(
    'npm',
    ['install', '--offline', '--cache', cache, '--no-audit', '--no-fund', packed.main, platform],
    {
      cwd: app,
      encoding: 'utf8',
      timeout: 120_000,
      shell: process.platform === 'win32',
    },
  )
  if (npm.status !== 0) throw new Error(`npm install of the tarballs failed:\n${npm.stderr}`)
  return { packed, app }
}

/** The files of a tarball, as paths inside the package, sorted. */
export function listTarball(tarball: string): string[] {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((entry) => entry.replace(/^package\//, ''))
    .sort()
}

/**
 * What the main tarball must hold, sorted, for a tree whose surface is
 * `libDir`: the entry, the surface compiled with its types and declaration
 * maps, the sources the maps point to, the loader, and the docs. Nothing
 * else: no tarball, staging folder, binary, test or configuration.
 */
export function mainTarballFiles(libDir: string): string[] {
  const surface = readdirSync(libDir)
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) => {
      const name = file.replace(/\.ts$/, '')
      return [`lib/${file}`, `dist/${name}.js`, `dist/${name}.d.ts`, `dist/${name}.d.ts.map`]
    })
  return [
    'CHANGELOG.md',
    'LICENSE',
    'README.md',
    'index.d.ts',
    'index.js',
    'native.d.ts',
    'native.js',
    'package.json',
    ...surface,
  ].sort()
}

// `npm run pack -- [--out <dir>] [--all]`: the tarballs to publish, written to
// release/ (or `--out`), a folder of their own that nothing ships.
//
// - One per platform package `npm/<platform>/` whose binary is there, either
//   put into it by `napi artifacts` (the release workflow) or left at the top
//   level by `npm run build` (this machine's platform).
// - The main package, with `optionalDependencies` on every platform package
//   at its own version. They are added here, to a staged copy, and not kept
//   in package.json: the platform packages of an unreleased version are not
//   published, so npm could not lock them and `npm ci` would fail.
//
// The main package holds exactly the files `npm pack` would take from the
// repository root (package.json's `files`, README and LICENSE, by npm's own
// rules), and the run fails if those include a tarball, a staging folder or
// a binary. Packages are staged in a temporary directory that is removed
// however the run ends, and the output folder is emptied of old tarballs
// first (in a folder given with `--out`, of this package's only), so one run
// never ships what another left behind.
//
// `--all` fails unless every target of `napi.targets` has its binary (the
// release workflow packs with it). The last line printed is a JSON object:
// `{ main, platforms: { [platform]: tarball } }`, paths of the tarballs.
import { spawnSync } from 'node:child_process'
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
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTriple } from '@napi-rs/cli'

const root = fileURLToPath(new URL('..', import.meta.url))

/** The `files` entries `npm run build` writes. */
const BUILT = ['dist', 'native.js', 'native.d.ts']

/** A reason to stop, said to the person who ran the script. */
class PackError extends Error {}

function parseArgs(argv) {
  const options = { out: join(root, 'release'), all: false }
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--out' && i + 1 < argv.length) options.out = resolve(argv[++i])
    else if (argv[i] === '--all') options.all = true
    else throw new PackError(`unknown argument '${argv[i]}' (expected --out <dir> or --all)`)
  }
  return options
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))

function npm(args, cwd) {
  const result = spawnSync('npm', args, { cwd, encoding: 'utf8', shell: process.platform === 'win32' })
  if (result.status !== 0) throw new PackError(`npm ${args.join(' ')} in ${cwd} failed:\n${result.stderr}`)
  return JSON.parse(result.stdout)
}

/** The files `npm pack` would put into the package at `dir`, by npm's rules (`files`, .npmignore, README...). */
function packedFiles(dir) {
  const [result] = npm(['pack', '--dry-run', '--json', '--ignore-scripts'], dir)
  return result.files.map((file) => file.path.split(sep).join('/')).sort()
}

/** Why `file` must not be in the main package, if it must not. */
function unshippable(file) {
  if (file.endsWith('.tgz')) return 'a tarball'
  if (file.split('/').includes('staging')) return 'in a staging folder'
  if (file.endsWith('.node')) return 'a native binary (binaries ship in the platform packages)'
  return undefined
}

/**
 * The main package's files, relative to the root. Fails if a `files` entry
 * names nothing or if npm would take in something no user should get.
 */
function mainFiles(main) {
  for (const entry of main.files) {
    if (!/[*?[\]{}]/.test(entry) && !existsSync(join(root, entry))) {
      const fix = BUILT.includes(entry)
        ? 'It is written by `npm run build`: run it first.'
        : 'Add it, or take it out of files.'
      throw new PackError(`package.json's files names ${entry}, which is missing. ${fix}`)
    }
  }
  const files = packedFiles(root)
  const refused = files.flatMap((file) => {
    const why = unshippable(file)
    return why === undefined ? [] : [`  ${file}: ${why}`]
  })
  if (refused.length > 0) {
    throw new PackError(
      `the main package would ship files no user should get:\n${refused.join('\n')}\n` +
        'They are left over from an earlier build or pack: run `npm run build` (it empties dist/) or delete them, ' +
        "and check package.json's files.",
    )
  }
  for (const required of ['README.md', 'LICENSE']) {
    if (!files.includes(required)) throw new PackError(`${required} is missing at the repository root`)
  }
  return files
}

/** Refuses an output folder whose contents the main package ships (`--out dist`): the tarballs would go in. */
function checkOut(out, files) {
  const inside = relative(root, out).split(sep).join('/')
  if (inside === '' || inside.startsWith('..')) return
  if (files.some((file) => file.startsWith(`${inside}/`))) {
    throw new PackError(
      `--out ${inside} is a folder the main package ships, so its tarballs would end up in the next one. ` +
        'Pack into a folder of its own (the default, release/).',
    )
  }
}

/**
 * Removes old tarballs from `out` before a run: every one in release/, which
 * is this script's own folder, and only this package's (`<name>-...tgz`) in a
 * folder given with `--out`, which may hold other files of the user's.
 */
function removeOldTarballs(out, name) {
  const own = out === join(root, 'release')
  for (const file of readdirSync(out)) {
    if (file.endsWith('.tgz') && (own || file.startsWith(`${name}-`))) rmSync(join(out, file), { force: true })
  }
}

/** Copies `files` (pairs of source and path in the package) and the manifest into a new folder, and packs it. */
function packStaged(dir, files, manifest, out) {
  mkdirSync(dir)
  for (const [from, to] of files) {
    mkdirSync(dirname(join(dir, to)), { recursive: true })
    copyFileSync(from, join(dir, to))
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  const [result] = npm(['pack', '--json', '--ignore-scripts', '--pack-destination', out], dir)
  return join(out, result.filename)
}

function pack(options, staging, written) {
  const main = readJson(join(root, 'package.json'))
  // First of all, so that after a failed run the folder holds no tarball of an earlier one either.
  if (existsSync(options.out)) removeOldTarballs(options.out, main.name)
  const files = mainFiles(main)
  checkOut(options.out, files)
  mkdirSync(options.out, { recursive: true })

  const platforms = {}
  const optionalDependencies = {}
  for (const triple of main.napi.targets) {
    const platform = parseTriple(triple).platformArchABI
    const dir = join(root, 'npm', platform)
    const manifest = readJson(join(dir, 'package.json'))
    if (manifest.version !== main.version) {
      throw new PackError(`npm/${platform}/package.json is at ${manifest.version}, the package at ${main.version}`)
    }
    optionalDependencies[manifest.name] = main.version
    const binary = manifest.main
    const source = [join(dir, binary), join(root, binary)].find((file) => existsSync(file))
    if (source === undefined) {
      if (options.all) throw new PackError(`no binary for ${platform}: neither npm/${platform}/${binary} nor ${binary}`)
      continue
    }
    const platformFiles = [
      [source, binary],
      [join(dir, 'README.md'), 'README.md'],
      [join(root, 'LICENSE'), 'LICENSE'],
    ]
    platforms[platform] = packStaged(join(staging, platform), platformFiles, manifest, options.out)
    written.push(platforms[platform])
  }

  // What a consumer installs: the files npm takes from the root, and a
  // manifest without this repository's development scripts and tools.
  const { scripts: _scripts, devDependencies: _dev, overrides: _overrides, ...published } = main
  const mainPackage = files.filter((file) => file !== 'package.json').map((file) => [join(root, file), file])
  const mainTarball = packStaged(
    join(staging, 'main'),
    mainPackage,
    { ...published, optionalDependencies },
    options.out,
  )
  written.push(mainTarball)
  return { main: mainTarball, platforms }
}

const staging = mkdtempSync(join(tmpdir(), 'nity-pack-'))
const written = []
try {
  const packed = pack(parseArgs(process.argv.slice(2)), staging, written)
  console.log(JSON.stringify(packed))
} catch (error) {
  // A failed run leaves no tarball, so the output folder never holds half a release.
  for (const tarball of written) rmSync(tarball, { force: true })
  console.error(`scripts/pack.mjs: ${error instanceof PackError ? error.message : error.stack}`)
  process.exitCode = 1
} finally {
  rmSync(staging, { recursive: true, force: true })
}

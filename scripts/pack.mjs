// `npm run pack -- [--out <dir>] [--all]`: the tarballs to publish.
//
// - One per platform package `npm/<platform>/` whose binary is there, either
//   put into it by `napi artifacts` (the release workflow) or left at the top
//   level by `npm run build` (this machine's platform).
// - The main package, with `optionalDependencies` on every platform package
//   at its own version. They are added here, to a staged copy, and not kept
//   in package.json: the platform packages of an unreleased version are not
//   published, so npm could not lock them and `npm ci` would fail.
//
// `--all` fails unless every target of `napi.targets` has its binary (the
// release workflow packs with it). The last line printed is a JSON object:
// `{ main, platforms: { [platform]: tarball } }`, paths of the tarballs.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const { supportedPlatforms } = createRequire(import.meta.url)('../dist/platforms.js')

function parseArgs(argv) {
  const options = { out: join(root, 'dist'), all: false }
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--out' && i + 1 < argv.length) options.out = resolve(argv[++i])
    else if (argv[i] === '--all') options.all = true
    else fail(`unknown argument '${argv[i]}' (expected --out <dir> or --all)`)
  }
  return options
}

function fail(message) {
  console.error(`scripts/pack.mjs: ${message}`)
  process.exit(1)
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))

function npmPack(dir, out) {
  const npm = spawnSync('npm', ['pack', '--json', '--pack-destination', out], {
    cwd: dir,
    encoding: 'utf8',
    shell: process.platform === 'win32',
  })
  if (npm.status !== 0) fail(`npm pack in ${dir} failed:\n${npm.stderr}`)
  const [result] = JSON.parse(npm.stdout)
  return join(out, result.filename)
}

function stage(dir, files, manifest) {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  for (const [from, to] of files) {
    mkdirSync(dirname(join(dir, to)), { recursive: true })
    cpSync(from, join(dir, to), { recursive: true })
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
}

const options = parseArgs(process.argv.slice(2))
const main = readJson(join(root, 'package.json'))
const staging = join(options.out, 'staging')
mkdirSync(options.out, { recursive: true })

const platforms = {}
const optionalDependencies = {}
for (const platform of supportedPlatforms()) {
  const dir = join(root, 'npm', platform)
  const manifest = readJson(join(dir, 'package.json'))
  if (manifest.version !== main.version) {
    fail(`npm/${platform}/package.json is at ${manifest.version}, the package at ${main.version}`)
  }
  optionalDependencies[manifest.name] = main.version
  const binary = manifest.main
  const source = [join(dir, binary), join(root, binary)].find((file) => existsSync(file))
  if (source === undefined) {
    if (options.all) fail(`no binary for ${platform}: neither npm/${platform}/${binary} nor ${binary}`)
    continue
  }
  const files = [
    [source, binary],
    [join(dir, 'README.md'), 'README.md'],
    [join(root, 'LICENSE'), 'LICENSE'],
  ]
  stage(join(staging, platform), files, manifest)
  platforms[platform] = npmPack(join(staging, platform), options.out)
}

// What a consumer installs: the API files, README and LICENSE, and a
// manifest without this repository's development scripts and tools.
const { scripts: _scripts, devDependencies: _dev, overrides: _overrides, ...published } = main
const files = [...main.files, 'README.md', 'LICENSE'].map((file) => {
  if (!existsSync(join(root, file))) fail(`${file} is missing: run npm run build first`)
  return [join(root, file), file]
})
stage(join(staging, 'main'), files, { ...published, optionalDependencies })
const mainTarball = npmPack(join(staging, 'main'), options.out)
rmSync(staging, { recursive: true, force: true })

console.log(JSON.stringify({ main: mainTarball, platforms }))

// `npm run release -- [--dry-run] [--tag v1.2.3]`: publishes the platform
// packages and the main package from the build jobs' artifacts. It is the
// release workflow's publish job, so the same commands can be run locally.
//
// Before it, `npm ci` has installed the tools and artifacts/ holds each
// build job's artifact as actions/download-artifact lays it out:
// artifacts/bindings-<platform>/ with nity-session-registry.<platform>.node,
// native.js and native.d.ts. Then, in order, stopping at the first failure:
//
// 1. The tag (`--tag`, else GITHUB_REF_NAME when set) must be v<version>.
// 2. `napi artifacts` puts each binary into its platform package npm/<platform>/.
// 3. The generated loader native.js and native.d.ts are copied to the root
//    (they are the same in every artifact).
// 4. `npm run build:surface` compiles the TypeScript surface into dist/.
// 5. `npm run pack -- --all` writes every tarball to release/.
// 6. `npm publish <tarball> --access public` for each platform package, then
//    the main package last, so it never names a platform package that is not
//    there. `--dry-run` is passed on to npm publish.
//
// Provenance is npm's setting: the workflow sets NPM_CONFIG_PROVENANCE=true.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTriple } from '@napi-rs/cli'

const root = fileURLToPath(new URL('..', import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

function fail(message) {
  console.error(`scripts/release.mjs: ${message}`)
  process.exit(1)
}

function parseArgs(argv) {
  const options = { dryRun: false, tag: process.env.GITHUB_REF_NAME || undefined }
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--dry-run') options.dryRun = true
    else if (argv[i] === '--tag' && i + 1 < argv.length) options.tag = argv[++i]
    else fail(`unknown argument '${argv[i]}' (expected --dry-run or --tag v<version>)`)
  }
  return options
}

/** Runs a command at the root, its output shown; returns its stdout when `capture` is set. */
function run(command, args, { capture = false } = {}) {
  console.log(`> ${command} ${args.join(' ')}`)
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['inherit', capture ? 'pipe' : 'inherit', 'inherit'],
    shell: process.platform === 'win32',
  })
  if (result.status !== 0) fail(`${command} ${args.join(' ')} failed (exit code ${result.status ?? result.signal})`)
  if (capture) process.stdout.write(result.stdout)
  return result.stdout
}

const options = parseArgs(process.argv.slice(2))

if (options.tag === undefined) {
  console.log(`No tag given (--tag or GITHUB_REF_NAME): releasing ${manifest.name}@${manifest.version} unchecked.`)
} else if (options.tag !== `v${manifest.version}`) {
  fail(
    `the tag ${options.tag} does not name the package's version ${manifest.version}: ` +
      `tag the release v${manifest.version}, or set the version in package.json and npm/*/package.json to the tag's.`,
  )
}

// The loader comes from the first target's artifact, as any would do.
const loaderFrom = join('artifacts', `bindings-${parseTriple(manifest.napi.targets[0]).platformArchABI}`)
if (!existsSync(join(root, loaderFrom, 'native.js'))) {
  fail(
    `${join(loaderFrom, 'native.js')} is missing. artifacts/ must hold the build jobs' artifacts, ` +
      'as actions/download-artifact lays them out: artifacts/bindings-<platform>/ with ' +
      'nity-session-registry.<platform>.node, native.js and native.d.ts.',
  )
}

run('npx', ['--no-install', 'napi', 'artifacts', '--output-dir', 'artifacts', '--npm-dir', 'npm'])
for (const file of ['native.js', 'native.d.ts']) copyFileSync(join(root, loaderFrom, file), join(root, file))
run('npm', ['run', 'build:surface'])
const out = run('npm', ['run', '--silent', 'pack', '--', '--all'], { capture: true })
const packed = JSON.parse(out.trim().split('\n').pop())

for (const tarball of [...Object.values(packed.platforms), packed.main]) {
  run('npm', ['publish', tarball, '--access', 'public', ...(options.dryRun ? ['--dry-run'] : [])])
}
console.log(`${options.dryRun ? 'Dry run: would have published' : 'Published'} ${manifest.name}@${manifest.version}.`)

// `node scripts/publish-guard.mjs [<package.json>]`: fails unless the manifest
// (by default the one npm is publishing) depends, optionally, on the platform
// package of every target in its `napi.targets`, at its own version.
//
// It is package.json's `prepublishOnly` script. npm runs that script before
// publishing a folder (`npm publish` at the root), also with `--dry-run`,
// with `npm_package_json` naming the folder's package.json; it runs no
// script when it publishes a tarball. The repository's package.json has no
// `optionalDependencies` (scripts/pack.mjs adds them to the staged main
// package, which has no scripts), so publishing the root would give users
// no binary: this refuses it and names the way that works.
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTriple } from '@napi-rs/cli'

const root = fileURLToPath(new URL('..', import.meta.url))
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))

const manifestPath = resolve(process.argv[2] ?? process.env.npm_package_json ?? 'package.json')
const manifest = readJson(manifestPath)

// The platform packages' names are theirs to say, in npm/<platform>/package.json.
const missing = (manifest.napi?.targets ?? []).flatMap((triple) => {
  const platform = parseTriple(triple).platformArchABI
  const { name } = readJson(join(root, 'npm', platform, 'package.json'))
  return manifest.optionalDependencies?.[name] === manifest.version ? [] : [`${name}@${manifest.version}`]
})

if (missing.length > 0) {
  console.error(
    `scripts/publish-guard.mjs: refusing to publish ${manifest.name}@${manifest.version} from ${manifestPath}: ` +
      `it lacks the optionalDependencies that install its binaries (${missing.join(', ')}), ` +
      'so users would get no native binary.\n' +
      'Publish with `npm run release` (what the release workflow runs), or publish the tarballs ' +
      '`npm run pack` writes to release/, platform packages first and the main package last.',
  )
  process.exit(1)
}

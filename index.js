'use strict'
// The package's entry. `native.js` is the loader `napi build` generates: it
// finds the binary for this platform (next to it in a development checkout,
// or in the platform package npm installed as an optional dependency). This
// file turns its failures into one error that says what to do, and exports
// the package's API and nothing of the loader's internals.

const { describePlatform, loadFailure } = require('./platforms.js')

let binding
try {
  binding = require('./native.js')
} catch (error) {
  throw loadFailure(error)
}
if (binding === null || typeof binding !== 'object' || typeof binding.NitySessionRegistry !== 'function') {
  // A bundler that turned the `.node` file into something else (esbuild's
  // `file` loader hands back a path string) lands here.
  const got = binding === null ? 'null' : typeof binding
  const error = new Error(
    `nity-session-registry: the native binary for ${describePlatform()} did not load as a Node.js addon ` +
      `(the loader got ${got}). If you bundle this package, mark it external ` +
      `(esbuild --external:nity-session-registry, webpack externals) or copy the .node file as it is ` +
      `(esbuild --loader:.node=copy).`,
  )
  error.code = 'ERR_NATIVE_BINDING_LOAD_FAILED'
  throw error
}

const { NitySessionRegistry } = binding

module.exports = { NitySessionRegistry }

// The package's entry: the TypeScript surface, compiled by `npm run build`
// into dist/. It names the runtime API so that `import` sees exactly it.
const { NitySessionRegistry, isNityError } = require('./dist/index.js')

module.exports = { NitySessionRegistry, isNityError }

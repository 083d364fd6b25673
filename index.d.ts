// The package's types: the hand-written TypeScript surface's.
export * from './dist/index'

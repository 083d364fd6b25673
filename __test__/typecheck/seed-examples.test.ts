import { describe, expect, it } from 'vitest'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { Compilation } from './compiler'

const here = __dirname
const fixtures = join(here, 'fixtures')

const env = [join(fixtures, 'seed-env.d.ts')]
const fixtureFiles = readdirSync(fixtures)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => join(fixtures, f))
let strict: Compilation | undefined
let exactOptional: Compilation | undefined

/** What `tsc --strict` (and `extra`) reports about one fixture, compiled with the seed environment. */
function diagnostics(file: string, extra: { exactOptionalPropertyTypes?: true } = {}): string[] {
  if (extra.exactOptionalPropertyTypes) {
    exactOptional ??= new Compilation(fixtureFiles, env, { exactOptionalPropertyTypes: true })
    return exactOptional.diagnostics(join(fixtures, file))
  }
  strict ??= new Compilation(fixtureFiles, env)
  return strict.diagnostics(join(fixtures, file))
}

/** The seed document's examples, copied character for character. */
const seedExamples = [
  'basic-usage.ts',
  'server-example.ts',
  'session-health.ts',
  'healthy-session.ts',
  'single-client.ts',
]

/** Our own type guarantees, beyond the seed document. */
const ownExamples = ['generic-handles.ts', 'minimal-handles.ts', 'cluster-types.ts', 'exact-optional.ts', 'errors.ts']

describe('index.d.ts against the documented API', () => {
  it('has a fixture for every seed example and nothing unaccounted for', () => {
    const files = readdirSync(fixtures).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    expect(files.sort()).toEqual([...seedExamples, ...ownExamples, 'deliberate-error.ts'].sort())
  })

  it.each(seedExamples)('compiles the seed example %s unchanged under --strict', (file) => {
    expect(diagnostics(file)).toEqual([])
  })

  it('keeps richer handle types through the generic parameter', () => {
    expect(diagnostics('generic-handles.ts')).toEqual([])
  })

  it('asks of a handle only id and close(); getHealth and isRunning are optional', () => {
    expect(diagnostics('minimal-handles.ts')).toEqual([])
  })

  it('types registry.cluster by the options: NityCluster with the cluster option, undefined without', () => {
    expect(diagnostics('cluster-types.ts')).toEqual([])
  })

  it.each([
    ['NodeNext', { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }],
    ['Node16', { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }],
    [
      'CommonJS with node10 resolution',
      { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 },
    ],
  ])('types registry.cluster the same under module %s', (_name, modes) => {
    const compilation = new Compilation([join(fixtures, 'cluster-types.ts')], [], modes)
    expect(compilation.diagnostics(join(fixtures, 'cluster-types.ts'))).toEqual([])
  })

  it('takes an explicit undefined for every optional option under exactOptionalPropertyTypes', () => {
    expect(diagnostics('exact-optional.ts', { exactOptionalPropertyTypes: true })).toEqual([])
  })

  it('narrows errors with isNityError, to one code when asked', () => {
    expect(diagnostics('errors.ts')).toEqual([])
  })

  it("the package's own declaration files have no type errors", () => {
    strict ??= new Compilation(fixtureFiles, env)
    expect(strict.packageDiagnostics()).toEqual([])
  })

  it('reports real type errors (the harness is not vacuous)', () => {
    const errors = diagnostics('deliberate-error.ts')
    expect(errors.length).toBeGreaterThan(0)
    expect(errors.join('\n')).toContain("Argument of type 'number' is not assignable to parameter of type 'string'")
  })
})

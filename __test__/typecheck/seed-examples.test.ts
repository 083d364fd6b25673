import { describe, expect, it } from 'vitest'
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript'

const here = __dirname
const fixtures = join(here, 'fixtures')
const packageRoot = resolve(here, '..', '..')

/** Compiles one file, alone with the seed environment, under `--strict`. */
function diagnostics(file: string): string[] {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    types: ['node'],
    typeRoots: [join(packageRoot, 'node_modules', '@types')],
    paths: { 'nity-session-registry': [join(packageRoot, 'index.d.ts')] },
    skipLibCheck: false,
  }
  const program = ts.createProgram([join(fixtures, file), join(fixtures, 'seed-env.d.ts')], options)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file
      ? `${d.file.fileName.slice(packageRoot.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
      : ''
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

/** The seed document's examples, copied character for character. */
const seedExamples = [
  'basic-usage.ts',
  'server-example.ts',
  'session-health.ts',
  'healthy-session.ts',
  'single-client.ts',
]

describe('index.d.ts against the documented API', () => {
  it('has a fixture for every seed example and nothing unaccounted for', () => {
    const files = readdirSync(fixtures).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    expect(files.sort()).toEqual([...seedExamples, 'deliberate-error.ts', 'generic-handles.ts'].sort())
  })

  it.each(seedExamples)('compiles the seed example %s unchanged under --strict', (file) => {
    expect(diagnostics(file)).toEqual([])
  })

  it('keeps richer handle types through the generic parameter', () => {
    expect(diagnostics('generic-handles.ts')).toEqual([])
  })

  it('reports real type errors (the harness is not vacuous)', () => {
    const errors = diagnostics('deliberate-error.ts')
    expect(errors.length).toBeGreaterThan(0)
    expect(errors.join('\n')).toContain("Argument of type 'number' is not assignable to parameter of type 'string'")
  })
})

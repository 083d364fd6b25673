// Type-checks files against the package's published types, under `--strict`,
// the way a consumer's project would: one program per set of options (the
// standard library and @types/node are read and checked once, not per file),
// and the diagnostics of each file on their own.
import { join, resolve } from 'node:path'
import ts from 'typescript'

const packageRoot = resolve(__dirname, '..', '..')

/** Options of a consumer's project: strict, ES modules unless `extra` says otherwise, the package resolved to its index.d.ts. */
function consumerOptions(extra: ts.CompilerOptions): ts.CompilerOptions {
  return {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    ...extra,
    types: ['node'],
    typeRoots: [join(packageRoot, 'node_modules', '@types')],
    paths: { 'nity-session-registry': [join(packageRoot, 'index.d.ts')] },
    skipLibCheck: false,
  }
}

function describeDiagnostic(d: ts.Diagnostic): string {
  const where = d.file
    ? `${d.file.fileName.slice(packageRoot.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
    : ''
  return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
}

/** A program over `files` (with the ambient `env` files); diagnostics are read per file. */
export class Compilation {
  private readonly program: ts.Program

  constructor(files: readonly string[], env: readonly string[], extra: ts.CompilerOptions = {}) {
    this.program = ts.createProgram([...files, ...env], consumerOptions(extra))
  }

  /** What a project made of `file` and the env files alone would report about `file`. */
  diagnostics(file: string): string[] {
    const source = this.program.getSourceFile(file)
    if (source === undefined) throw new Error(`${file} is not part of this compilation`)
    return [
      ...this.program.getOptionsDiagnostics(),
      ...this.program.getGlobalDiagnostics(),
      ...this.program.getSyntacticDiagnostics(source),
      ...this.program.getSemanticDiagnostics(source),
    ].map(describeDiagnostic)
  }

  /** Diagnostics of the package's own declaration files (index.d.ts, dist/*.d.ts). */
  packageDiagnostics(): string[] {
    return this.program
      .getSourceFiles()
      .filter((source) => source.fileName.startsWith(packageRoot) && !source.fileName.includes('node_modules'))
      .filter((source) => source.isDeclarationFile)
      .flatMap((source) => this.program.getSemanticDiagnostics(source))
      .map(describeDiagnostic)
  }
}

// The README is the package's page on npm: its error table lists every code,
// its links resolve in the published package (or are absolute), and every
// TypeScript example in it compiles under `tsc --strict`.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ERROR_CODES, nityError } from '../dist/errors.js'
import { Compilation } from './typecheck/compiler'

const root = path.join(__dirname, '..')
const readme = readFileSync(path.join(root, 'README.md'), 'utf8')

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-')
}

describe('the README', () => {
  it('lists every error code once in its table, with the class it is thrown as', () => {
    const rows = readme
      .split('\n')
      .map((line) => /^\s*\| `(ERR_[A-Z_]+)` \| `(TypeError|Error)` \|/.exec(line))
      .filter((match): match is RegExpExecArray => match !== null)
    const documented = rows.map((match) => match[1])
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort())
    for (const [, code, kind] of rows) {
      expect(nityError(code as (typeof ERROR_CODES)[number], 'x').constructor.name, code).toBe(kind)
    }
  })

  it('links only to absolute URLs, headings of its own, or files the published package holds', () => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
    ) as Array<{ files: Array<{ path: string }> }>
    const shipped = new Set(packed[0]!.files.map((file) => file.path))
    const headings = new Set(
      readme
        .split('\n')
        .filter((line) => /^#{1,6} /.test(line))
        .map((line) => anchor(line.replace(/^#+ /, ''))),
    )
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!)
    expect(links.length).toBeGreaterThan(0)
    const broken = links.filter((target) => {
      if (/^https?:\/\//.test(target)) return false
      if (target.startsWith('#')) return !headings.has(target.slice(1))
      return !shipped.has(target.replace(/^\.\//, '').replace(/#.*$/, ''))
    })
    expect(broken).toEqual([])
  })

  describe('TypeScript examples', () => {
    const blocks = [...readme.matchAll(/^( *)```ts\n([\s\S]*?)^\1```$/gm)].map((match, i) => ({
      line: readme.slice(0, match.index).split('\n').length,
      code: match[2]!.replace(new RegExp(`^${match[1]}`, 'gm'), ''),
      index: i,
    }))
    const work = path.join(root, '__test__', '.tmp', `readme-${process.pid}`)
    const files = blocks.map((block) => path.join(work, `example-${block.index + 1}-line-${block.line}.ts`))
    let compilation: Compilation | undefined

    afterAll(() => rmSync(work, { recursive: true, force: true }))

    it('are there, the cluster example among them', () => {
      expect(blocks.length).toBeGreaterThanOrEqual(8)
      expect(blocks.some((block) => block.code.includes('registry.cluster.ready()'))).toBe(true)
    })

    it.each(blocks.map((block, i) => [block.line, i] as const))(
      'the example at line %i compiles under --strict',
      (_line, i) => {
        if (compilation === undefined) {
          mkdirSync(work, { recursive: true })
          blocks.forEach((block, j) => writeFileSync(files[j]!, block.code))
          const env = ['seed-env.d.ts', 'readme-env.d.ts'].map((file) =>
            path.join(root, '__test__', 'typecheck', 'fixtures', file),
          )
          compilation = new Compilation(files, env)
        }
        expect(compilation.diagnostics(files[i]!)).toEqual([])
      },
    )
  })
})

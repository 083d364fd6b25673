import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const fixtures = join(__dirname, 'fixtures', 'loading')

function run(file: string): unknown {
  const output = execFileSync(process.execPath, [join(fixtures, file)], { encoding: 'utf8', timeout: 30_000 })
  return JSON.parse(output)
}

describe('loading the package', () => {
  it("works with require('nity-session-registry')", () => {
    expect(run('cjs.cjs')).toEqual({ named: 'function', same: true, total: 1 })
  })

  it("works with import { NitySessionRegistry } from 'nity-session-registry'", () => {
    expect(run('esm.mjs')).toEqual({ named: 'function', namespace: true, default: true, total: 1 })
  })
})

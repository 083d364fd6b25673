import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { hostPlatform } from '../helpers/platform'

const root = join(__dirname, '..', '..')
const host = hostPlatform()
const binary = join(root, host.binary)
const onLinuxX64Gnu = host.name === 'linux-x64-gnu'

/** `2.17` -> [2, 17], for comparing versions numerically. */
function parts(version: string): number[] {
  return version.split('.').map(Number)
}

function newer(a: string, b: string): boolean {
  const [x, y] = [parts(a), parts(b)]
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0)
  }
  return false
}

/** The glibc symbol versions the binary's dynamic section says it needs. */
function requiredGlibcVersions(file: string): string[] {
  const headers = execFileSync('objdump', ['-p', file], { encoding: 'utf8' })
  const references = headers.slice(headers.indexOf('Version References:'))
  return [...new Set([...references.matchAll(/\bGLIBC_([0-9.]+)\b/g)].map((m) => m[1]!))]
}

describe.skipIf(!onLinuxX64Gnu)('the linux-x64-gnu binary', () => {
  it('needs nothing newer than GLIBC_2.17, so it loads on glibc 2.17 and later', () => {
    expect(existsSync(binary), 'npm run build writes the binary').toBe(true)
    const versions = requiredGlibcVersions(binary)
    expect(versions.length, 'objdump lists the glibc versions the binary needs').toBeGreaterThan(0)
    const tooNew = versions.filter((v) => newer(v, '2.17'))
    expect(
      tooNew,
      'build with cargo-zigbuild (pip install ziglang cargo-zigbuild), which npm run build uses when it finds it',
    ).toEqual([])
  })

  it('reads the versions it checks from the binary (a binary linked against a newer glibc fails)', () => {
    // Node itself is linked against this machine's glibc: the same reading
    // must find versions above 2.17 in it, or the check above proves nothing.
    const versions = requiredGlibcVersions(process.execPath)
    expect(versions.some((v) => newer(v, '2.17'))).toBe(true)
  })
})

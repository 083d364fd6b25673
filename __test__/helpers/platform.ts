/** This machine's platform as napi-rs names binaries and platform packages. */
export interface HostPlatform {
  /** `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`. */
  name: string
  /** How the package's load errors describe it: `(os linux, cpu x64, libc glibc)`. */
  described: string
  /** The binary `npm run build` writes for it. */
  binary: string
}

export function hostPlatform(): HostPlatform {
  const { platform, arch } = process
  let name: string
  let described: string
  if (platform === 'win32') {
    name = `win32-${arch}-msvc`
    described = `(os win32, cpu ${arch})`
  } else if (platform === 'linux') {
    const report = process.report.getReport() as { header: { glibcVersionRuntime?: string } }
    const glibc = report.header.glibcVersionRuntime !== undefined
    name = `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
    described = `(os linux, cpu ${arch}, libc ${glibc ? 'glibc' : 'musl'})`
  } else {
    name = `${platform}-${arch}`
    described = `(os ${platform}, cpu ${arch})`
  }
  return { name, described, binary: `nity-session-registry.${name}.node` }
}

// `npm run setup`: installs what a fresh machine lacks to build and test the
// package, then the npm packages of the lockfile. Rust (cargo, rustfmt,
// clippy) and Node are taken as given.
//
// - On Linux, cargo-zigbuild and zig (from PyPI), so that `npm run build`
//   links the binary against glibc 2.17 (`npm test` checks it does).
// - `redis-server`, which the cluster tests start processes of: from the
//   system's packages (apt-get, as root) when it is missing.
// - `npm ci`.
//
// Each step is skipped when what it installs is already there, so running it
// again is cheap. A step it cannot take (no root, no apt-get) stops it with
// the command to run by hand.
import { spawnSync } from 'node:child_process'

const ZIG_TOOLS = ['ziglang==0.17.1', 'cargo-zigbuild==0.24.0']

function run(command, args, options = {}) {
  console.log(`setup: ${command} ${args.join(' ')}`)
  const result = spawnSync(command, args, { stdio: 'inherit', shell: process.platform === 'win32', ...options })
  if (result.status !== 0) {
    console.error(
      `setup: \`${command} ${args.join(' ')}\` failed (${result.error?.message ?? `exit ${result.status}`})`,
    )
    process.exit(1)
  }
}

function succeeds(command, args) {
  return spawnSync(command, args, { stdio: 'ignore', shell: process.platform === 'win32' }).status === 0
}

function stop(message) {
  console.error(`setup: ${message}`)
  process.exit(1)
}

if (process.platform === 'linux' && !succeeds('cargo', ['zigbuild', '--help'])) {
  run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...ZIG_TOOLS])
  if (!succeeds('cargo', ['zigbuild', '--help'])) {
    stop(
      'cargo-zigbuild was installed but is not on PATH; add the directory of ' +
        '`python3 -c "import sysconfig; print(sysconfig.get_path(\'scripts\'))"` to PATH',
    )
  }
}

if (!succeeds('redis-server', ['--version'])) {
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  if (process.platform !== 'linux' || !root || !succeeds('apt-get', ['--version'])) {
    stop(
      'redis-server is not installed and this script can only install it as root with apt-get; install it ' +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) and run it again',
    )
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  run('apt-get', ['update', '-qq'], { env })
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'], { env })
}

run('npm', ['ci', '--no-audit', '--no-fund'])
console.log('setup: done')

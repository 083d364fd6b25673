/**
 * One bridge node of `npm run demo -- --cluster`: a bridge server in cluster
 * mode, in a process of its own. It prints one JSON line when it listens
 * (`{ kind: 'listening', url }`) and one per bridge event, and leaves the
 * fleet on SIGTERM. argv: <redis url> <node id>
 */
import { startBridgeServer } from './server'

const [redis, nodeId] = process.argv.slice(2)
if (redis === undefined || nodeId === undefined) {
  console.error('usage: cluster-node.ts <redis url> <node id>')
  process.exit(2)
}
const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`)

async function main(redis: string, nodeId: string): Promise<void> {
  const server = await startBridgeServer({
    cluster: { redis, nodeId, namespace: 'demo', leaseMs: 1_500 },
    idleTimeoutMs: 60_000,
    cleanupIntervalMs: 5_000,
    onEvent: (event) => print(event),
  })
  print({ kind: 'listening', url: server.url })
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0))
  })
}

main(redis, nodeId).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})

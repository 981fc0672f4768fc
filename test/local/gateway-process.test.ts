import t from 'tap'
import { startGatewayProcess } from '../../local/gateway-process.js'
import { tempDir } from '../helpers/gateway.js'

// Started through tsx, a gateway takes seconds to load: far below this bound.
const READY_BOUND_MS = 60_000

t.test('a gateway that exits before it is ready: ready() fails at once with its exit status, and its lines say why', async (t) => {
  const lines: string[] = []
  const gateway = await startGatewayProcess({
    port: 0,
    cwd: tempDir(t),
    env: { KAFKA_BROKERS: '127.0.0.1:1', KAFKA_PARTITIONS: 'many' },
    onLine: (line) => lines.push(line)
  })
  t.teardown(() => gateway.stop())
  await t.rejects(gateway.ready(READY_BOUND_MS), /exited \(exit code 1\) before it listened/, 'not a timeout: the exit')
  t.equal(gateway.status, 'exit code 1', 'status says how it ended')
  t.ok(lines.some((line) => line.includes('KAFKA_PARTITIONS')), 'the config error it printed came through onLine')
})

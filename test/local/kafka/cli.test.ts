// `npm run kafka` (local/kafka/cli.ts) as a user runs it: a cluster of its own, in a temporary directory.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Kafka, logLevel } from 'kafkajs'
import t from 'tap'
import { projectRoot } from '../../../server/project-root.js'
import { tempDir } from '../../helpers/gateway.js'
import { freeRuns } from '../../helpers/ports.js'

t.setTimeout(120_000)

/** The pids of the JVMs whose command line names `dir`: only the ones this test started. */
function jvmsIn (dir: string): number[] {
  return readdirSync('/proc').filter(name => /^\d+$/.test(name)).map(Number).filter(pid => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      return cmdline.startsWith('java\0') && cmdline.includes('kafka.Kafka') && cmdline.includes(dir)
    } catch {
      return false // gone meanwhile
    }
  })
}

function isRunning (pid: number): boolean {
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : ''
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat)
}

t.test('local/kafka/cli.ts --brokers 3 (npm run kafka) prints one KAFKA_BROKERS line once the cluster serves; SIGTERM stops every broker', async t => {
  const dataDir = tempDir(t, 'kafka-notify-cluster-cli-')
  const port = await freeRuns(3, 2)
  const controllerPort = port + 100
  const cli = spawn(process.execPath, ['--import', 'tsx', 'local/kafka/cli.ts', '--brokers', '3', '--data-dir', dataDir,
    '--port', String(port), '--controller-port', String(controllerPort)], { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { cli.kill('SIGKILL') })
  const stdout: string[] = []
  const stderr: string[] = []
  createInterface({ input: cli.stderr }).on('line', line => stderr.push(line))
  const lines = createInterface({ input: cli.stdout })
  lines.on('line', line => stdout.push(line))
  const exited = once(cli, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const [first] = await Promise.race([
    once(lines, 'line') as Promise<[string]>,
    exited.then(([code]) => { throw new Error(`local/kafka/cli.ts exited with ${String(code)} before it was ready:\n${stderr.join('\n')}`) })
  ])
  const brokers = [0, 1, 2].map(i => `127.0.0.1:${port + i}`)
  t.equal(first, `KAFKA_BROKERS=${brokers.join(',')}`, 'the brokers on the ports asked for')

  const admin = new Kafka({ clientId: 'cluster-cli-test', brokers, logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  t.same((await admin.describeCluster()).brokers.map(broker => broker.nodeId).sort(), [1, 2, 3], 'and they are one cluster of 3')
  await admin.disconnect()
  const pids = jvmsIn(dataDir)
  t.equal(pids.length, 3, `3 JVMs run in ${dataDir}`)

  cli.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'SIGTERM: a clean exit')
  t.same(pids.filter(isRunning), [], 'with every JVM gone')
  t.same(stdout, [first], 'stdout had that one line only')
  t.ok(stderr.some(line => /Kafka cluster of 3 brokers ready/.test(line)), 'progress went to stderr')
})

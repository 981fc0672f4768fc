// `npm run kafka -- [--brokers 3] [--data-dir DIR] [--port P] [--controller-port C]`: runs a local
// Kafka cluster (or one broker) in the foreground for gateways started by hand. Progress goes to
// stderr; stdout gets exactly one line, `KAFKA_BROKERS=…`, once every broker serves. SIGINT or
// SIGTERM stops every node; a second Ctrl-C exits at once (the watchdogs still stop the JVMs).
import { parseArgs } from 'node:util'
import { startLocalKafkaCluster } from './cluster.js'
import { LocalKafkaError } from './errors.js'
import { startLocalKafka } from './launcher.js'
import { onStopSignals } from '../../server/stop-signals.js'

const USAGE = 'usage: npm run kafka -- [--brokers 1|3…] [--data-dir DIR] [--port FIRST_PORT] [--controller-port FIRST_PORT]'
const DEFAULT_PORT = 19092
const DEFAULT_CONTROLLER_PORT = 19192

interface Running { brokers: string[], stop(): Promise<void> }

const log = (line: string): void => { process.stderr.write(`kafka: ${line}\n`) }

process.exitCode = await main()

async function main (): Promise<number> {
  let args
  try {
    args = parseArgs({
      options: {
        brokers: { type: 'string', default: '3' },
        'data-dir': { type: 'string', default: './data/kafka-cluster' },
        port: { type: 'string', default: String(DEFAULT_PORT) },
        'controller-port': { type: 'string', default: String(DEFAULT_CONTROLLER_PORT) }
      }
    }).values
  } catch (err) {
    log(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  const brokers = Number(args.brokers)
  const port = Number(args.port)
  const controllerPort = Number(args['controller-port'])
  if (!Number.isInteger(brokers) || brokers < 1 || brokers === 2) {
    log(`--brokers must be 1, or 3 or more (a quorum that outlives one failed node), not ${args.brokers}\n${USAGE}`)
    return 2
  }
  for (const [name, value] of [['--port', port], ['--controller-port', controllerPort]] as const) {
    if (!Number.isInteger(value) || value < 1 || value + brokers - 1 > 65535) {
      log(`${name} must be a port number, not ${String(value)}\n${USAGE}`)
      return 2
    }
  }

  let running: Running | undefined
  onStopSignals(() => running !== undefined, () => {
    log('stopping')
    running!.stop().then(() => { process.exit(0) }, (err: unknown) => {
      log(`could not stop cleanly: ${String(err)}`)
      process.exit(1)
    })
  })

  const dataDir = args['data-dir']
  try {
    running = brokers === 1
      ? await startLocalKafka({ dataDir, port, controllerPort, log })
      : await startLocalKafkaCluster({ dataDir, brokers, basePort: port, baseControllerPort: controllerPort, log })
  } catch (err) {
    if (!(err instanceof LocalKafkaError)) throw err
    log(`${err.code}: ${err.message}`)
    return 1
  }
  process.stdout.write(`KAFKA_BROKERS=${running.brokers.join(',')}\n`)
  log(`running; data in ${dataDir}. Ctrl-C stops ${brokers === 1 ? 'the broker' : 'every broker'}.`)
  // The brokers do not keep Node running by themselves; the signal handlers end this.
  setInterval(() => {}, 1 << 30)
  return 0
}

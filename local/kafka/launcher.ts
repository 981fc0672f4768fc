// The embedded default: one local KRaft broker for `npm start`, `npm test` and the bench.
import { join } from 'node:path'
import { checkJava, ensureKafkaJars, type KafkaJarsOptions } from './jars.js'
import { freePorts } from '../ports.js'
import { choosePorts, groupsServed, newClusterId, nodeLayout, secondsSince, startNode } from './node.js'

export { ensureKafkaJars, type KafkaJarsOptions } from './jars.js'
export { LocalKafkaError, type LocalKafkaErrorCode } from './errors.js'

export interface LocalKafkaOptions extends KafkaJarsOptions {
  /** Broker storage, logs and settings go to `<dataDir>/kafka`; a restart on the same dir keeps the data. */
  dataDir: string
  /** PLAINTEXT port; 0 or undefined: the port of the last start on this dataDir, else a free one. */
  port?: number
  /** CONTROLLER port; 0 or undefined: a free one. Ignored once the dataDir is formatted. */
  controllerPort?: number
  /** JVM heap options; default `-Xms128m -Xmx512m`. */
  heap?: string
  /** How long the broker may take to serve requests once its jars are there; default 120 s. */
  startTimeoutMs?: number
}

export interface LocalKafka {
  brokers: string[]
  /** Process id of the broker's JVM. */
  pid: number
  /** Stops the broker (SIGTERM, then SIGKILL after 15 s); safe to call more than once. */
  stop(): Promise<void>
}

const DEFAULT_HEAP = '-Xms128m -Xmx512m'
export const DEFAULT_START_TIMEOUT_MS = 120_000

/** Starts a single-node KRaft broker on 127.0.0.1 and resolves once it serves requests. */
export async function startLocalKafka (opts: LocalKafkaOptions): Promise<LocalKafka> {
  const log = opts.log ?? noop
  await checkJava()
  const libs = await ensureKafkaJars(opts)
  const startedAt = performance.now()

  const layout = nodeLayout(join(opts.dataDir, 'kafka'))
  const [port = 0, controllerPort = 0] = await freePorts(2)
  const ports = await choosePorts(layout, { port: opts.port, controllerPort: opts.controllerPort }, { port, controllerPort },
    { port: 'set LOCAL_KAFKA_PORT to a free port', controllerPort: 'set LOCAL_KAFKA_CONTROLLER_PORT to a free port' }, log)
  const broker = await startNode(libs, {
    id: 1,
    layout,
    ports,
    replicationFactor: 1,
    minInsyncReplicas: 1,
    clusterId: newClusterId(),
    heap: opts.heap ?? DEFAULT_HEAP
  }, { ready: groupsServed, timeoutMs: opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, log })
  log(`Kafka ready at ${broker.address} in ${secondsSince(startedAt)} s`)
  return { brokers: [broker.address], pid: broker.pid, stop: broker.stop }
}

function noop (): void {}

// One KRaft node (broker and controller in one JVM) on 127.0.0.1: its settings, storage and
// process. The single broker (launcher.ts) and the local cluster (cluster.ts) are made of these.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { assetPath } from './assets.js'
import { errorText, LocalKafkaError, OR_USE_DOCKER } from './errors.js'
import { isFree } from '../ports.js'
import { startWatched, type WatchedProcess } from '../watchdog.js'

export interface NodePorts { port: number, controllerPort: number }

/** Where a node keeps its storage, logs and settings, all under `root`. */
export interface NodeLayout { root: string, data: string, logs: string, properties: string, ports: string }

export interface NodeSettings {
  id: number
  layout: NodeLayout
  ports: NodePorts
  /**
   * The static quorum of a cluster (`1@127.0.0.1:C1,2@…`), every node formatted alike; undefined:
   * a quorum of this node alone, formatted `--standalone`.
   */
  voters?: string
  /** Replicas of topics created with the broker's defaults, and of its internal topics. */
  replicationFactor: number
  /** The broker default `min.insync.replicas`, and its transaction log's. */
  minInsyncReplicas: number
  /** Used only to format a new node; every node of a cluster must share it. */
  clusterId: string
  /** JVM heap options, e.g. `-Xms128m -Xmx512m`. */
  heap: string
}

/** Throws while the node (or cluster) is not ready; resolves once it is. */
export type Readiness = (admin: Admin) => Promise<void>

export interface NodeProcess {
  /** Process id of the node's JVM. */
  pid: number
  address: string
  /** Resolves with the exit status once the JVM and its watchdog are gone. */
  exited: Promise<string>
  /** Stops the node (SIGTERM, then SIGKILL after 15 s); safe to call more than once. */
  stop(): Promise<void>
  /** Sends `signal` to the JVM and resolves once it is gone: a crash, where `stop()` is a shutdown. */
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void>
  /** What the node logged since this start: its first errors, else its last lines. */
  excerpt(): Promise<string>
}

export interface StartNodeOptions {
  ready: Readiness
  timeoutMs: number
  log: Log
}

export type Log = (line: string) => void

const STOP_GRACE_SECONDS = 15
const PROBE_INTERVAL_MS = 200
const execFileAsync = promisify(execFile)

export function nodeLayout (root: string): NodeLayout {
  return {
    root,
    data: join(root, 'data'),
    logs: join(root, 'logs'),
    properties: join(root, 'server.properties'),
    ports: join(root, 'ports.json')
  }
}

export function isFormatted (layout: NodeLayout): boolean {
  return existsSync(join(layout.data, 'meta.properties'))
}

/** A new cluster id, in the format of Kafka's Uuid. */
export function newClusterId (): string {
  // Like Kafka's own generator, never one starting with '-', which the storage tool's argument
  // parser would take for an option.
  let clusterId = randomBytes(16).toString('base64url')
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url')
  return clusterId
}

/**
 * Writes the node's settings, formats its storage if it is new, runs its JVM under the watchdog
 * (so it cannot outlive this process) and resolves once `ready` passes against it.
 */
export async function startNode (libs: string, settings: NodeSettings, opts: StartNodeOptions): Promise<NodeProcess> {
  const { layout } = settings
  await mkdir(layout.logs, { recursive: true })
  await writeFile(layout.ports, JSON.stringify(settings.ports) + '\n')
  await writeServerProperties(settings)
  const jvm = jvmArgs(libs, layout, settings.heap)
  await formatStorage(jvm, settings)

  const node = await launch([...jvm, 'kafka.Kafka', layout.properties], settings, opts.log)
  try {
    await waitUntilReady(node.address, opts.ready, opts.timeoutMs, [node])
  } catch (err) {
    await node.stop()
    throw err
  }
  return node
}

/**
 * The node's ports: the client port asked for, else the one of its last start, else `free`;
 * the controller port of its last start, else the one asked for, else `free`. `hint` says how
 * to choose another port when one is taken.
 */
export async function choosePorts (layout: NodeLayout, requested: { [K in keyof NodePorts]?: number | undefined }, free: NodePorts,
  hint: Record<keyof NodePorts, string>, log: Log): Promise<NodePorts> {
  const stored = await readFile(layout.ports, 'utf8').then(text => JSON.parse(text) as NodePorts).catch(() => undefined)
  // A formatted node keeps its controller port for good: `--standalone` records it in the metadata
  // log, and a static quorum names it in every node's settings. The client port may change (the
  // broker registers its listeners anew at each start), but reusing it keeps the same address.
  if (isFormatted(layout) && stored === undefined) {
    throw new LocalKafkaError('START_FAILED',
      `${layout.root} holds Kafka data but not ${layout.ports}, which records its controller port; delete ${layout.root} to start afresh.`)
  }
  const requestedController = requested.controllerPort || undefined
  if (stored !== undefined && requestedController !== undefined && requestedController !== stored.controllerPort) {
    log(`Kafka: keeping controller port ${stored.controllerPort} of ${layout.root} (it is recorded in its metadata), not ${requestedController}`)
  }
  const ports = {
    port: requested.port || stored?.port || free.port,
    controllerPort: stored?.controllerPort ?? requestedController ?? free.controllerPort
  }
  // Another broker on the port would answer the readiness probe while ours fails to bind.
  for (const name of ['port', 'controllerPort'] as const) {
    if (!await isFree(ports[name])) {
      throw new LocalKafkaError('START_FAILED', `Port ${ports[name]} on 127.0.0.1 is in use (another Kafka?): ${hint[name]}. ${OR_USE_DOCKER}`)
    }
  }
  return ports
}

async function writeServerProperties (settings: NodeSettings): Promise<void> {
  const { layout, ports } = settings
  const quorum = settings.voters === undefined
    ? `controller.quorum.bootstrap.servers=127.0.0.1:${ports.controllerPort}`
    : `controller.quorum.voters=${settings.voters}`
  const values: Record<string, string> = {
    NODE_ID: String(settings.id),
    QUORUM: quorum,
    PORT: String(ports.port),
    CONTROLLER_PORT: String(ports.controllerPort),
    LOG_DIR: layout.data,
    REPLICATION_FACTOR: String(settings.replicationFactor),
    MIN_INSYNC_REPLICAS: String(settings.minInsyncReplicas)
  }
  const template = await readFile(assetPath('server.properties'), 'utf8')
  const properties = template.replace(/@([A-Z_]+)@/g, (_match, name: string) => {
    const value = values[name]
    if (value === undefined) throw new Error(`local/kafka/server.properties: unknown placeholder @${name}@`)
    return value
  })
  await writeFile(layout.properties, properties)
}

function jvmArgs (libs: string, layout: NodeLayout, heap: string): string[] {
  return [
    ...heap.split(/\s+/).filter(Boolean),
    // The GC settings of Kafka's own start scripts: short pauses matter more than throughput.
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    // Log4j's own shutdown hook races Kafka's and would drop the log of the broker's shutdown.
    '-Dlog4j2.shutdownHookEnabled=false',
    `-Dlog4j2.configurationFile=${assetPath('log4j2.yaml')}`,
    `-Dkafka.logs.dir=${layout.logs}`,
    '-cp',
    join(libs, '*')
  ]
}

async function formatStorage (jvm: string[], settings: NodeSettings): Promise<void> {
  const { layout } = settings
  if (isFormatted(layout)) return
  // Without --standalone (nor --initial-controllers) the tool formats for the static quorum of
  // controller.quorum.voters.
  const quorum = settings.voters === undefined ? ['--standalone'] : []
  try {
    await execFileAsync('java', [...jvm, 'kafka.tools.StorageTool', 'format', ...quorum,
      '-t', settings.clusterId, '-c', layout.properties, '-g'])
  } catch (err) {
    throw new LocalKafkaError('START_FAILED', `Could not format Kafka storage in ${layout.data}: ${errorText(err)}`, { cause: err })
  }
}

async function launch (args: string[], settings: NodeSettings, log: Log): Promise<NodeProcess> {
  const { layout } = settings
  const excerpt = await logExcerptFromHere(layout)
  let jvm: WatchedProcess
  try {
    jvm = await startWatched('java', args, { name: 'kafka-watchdog', graceSeconds: STOP_GRACE_SECONDS })
  } catch (err) {
    throw new LocalKafkaError('START_FAILED', `The Kafka broker did not start: ${errorText(err)}`, { cause: err })
  }
  let expected = false
  void jvm.exited.then((status) => {
    if (!expected) log(`Kafka node ${settings.id} at ${layout.root} exited unexpectedly (${status})`)
  })
  return {
    pid: jvm.pid,
    address: `127.0.0.1:${settings.ports.port}`,
    exited: jvm.exited,
    excerpt,
    stop: async () => {
      expected = true
      await jvm.stop()
    },
    kill: async (signal) => {
      expected = true
      await jvm.kill(signal)
    }
  }
}

async function failOnExit (exited: Promise<string>, excerpt: () => Promise<string>): Promise<never> {
  const status = await exited
  throw new LocalKafkaError('START_FAILED', `The Kafka broker exited during start-up (${status}).${await excerpt()}`)
}

/**
 * Resolves once `ready` passes against `address`, within `timeoutMs`; fails at once if one of
 * `nodes` exits meanwhile.
 */
export async function waitUntilReady (address: string, ready: Readiness, timeoutMs: number, nodes: NodeProcess[]): Promise<void> {
  const abort = new AbortController()
  const timeout = async (): Promise<never> => {
    await delay(timeoutMs, undefined, { signal: abort.signal })
    const excerpts = await Promise.all(nodes.map(async node => await node.excerpt()))
    throw new LocalKafkaError('START_TIMEOUT',
      `The Kafka broker at ${address} did not serve requests within ${timeoutMs / 1000} s.${excerpts.join('')}`)
  }
  try {
    await Promise.race([
      waitUntilServing(address, ready, abort.signal),
      ...nodes.map(async node => await failOnExit(node.exited, node.excerpt)),
      timeout()
    ])
  } finally {
    abort.abort()
  }
}

// A broker accepts connections before it is unfenced and able to serve: only a real request
// answered tells that it is ready.
async function waitUntilServing (address: string, ready: Readiness, signal: AbortSignal): Promise<void> {
  const kafka = new Kafka({
    clientId: 'kafka-notify-launcher',
    brokers: [address],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 0 }
  })
  while (!signal.aborted) {
    const admin = kafka.admin()
    try {
      await admin.connect()
      await ready(admin)
      return
    } catch {
      // not listening or not unfenced yet
    } finally {
      await admin.disconnect()
    }
    await delay(PROBE_INTERVAL_MS, undefined, { signal })
  }
}

/**
 * Ready once the brokers can coordinate a consumer group. Asking about a group also creates the
 * offsets topic on a new cluster and waits out its loading on a restarted one, so the owner's
 * consumer group can join at once instead of retrying "coordinator not available / loading".
 */
export async function groupsServed (admin: Admin): Promise<void> {
  await admin.describeCluster() // fills kafkajs's broker pool, which findCoordinator needs
  await admin.describeGroups(['kafka-notify-launcher-probe'])
}

// What the broker logs from now on: the server.log of a data dir grows across restarts. The
// first errors tell why a start failed; the shutdown that follows them only adds noise.
async function logExcerptFromHere (layout: NodeLayout): Promise<() => Promise<string>> {
  const file = join(layout.logs, 'server.log')
  const offset = await stat(file).then(({ size }) => size, () => 0)
  return async () => {
    const text = await readFile(file).then(bytes => bytes.subarray(offset).toString('utf8'), () => '')
    const lines = text.trimEnd().split('\n').filter(Boolean)
    const errors = lines.filter(line => /^\[[^\]]+\] (ERROR|FATAL) /.test(line)).slice(0, 10)
    const excerpt = errors.length > 0 ? errors : lines.slice(-20)
    return excerpt.length > 0 ? `\nFrom ${file}:\n${excerpt.join('\n')}` : ''
  }
}

export function secondsSince (start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1)
}

// A local KRaft cluster: several combined broker+controller nodes with a static quorum, for
// trying and testing what a single broker cannot show (a broker failing, replication).
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Admin } from 'kafkajs'
import { freePorts } from '../ports.js'
import { LocalKafkaError } from './errors.js'
import { checkJava, ensureKafkaJars, type KafkaJarsOptions } from './jars.js'
import {
  choosePorts, groupsServed, isFormatted, newClusterId, nodeLayout, secondsSince, startNode, waitUntilReady,
  type Log, type NodePorts, type NodeProcess, type NodeSettings, type Readiness
} from './node.js'

export interface LocalKafkaClusterOptions extends KafkaJarsOptions {
  /** Each node keeps its storage, logs and settings in `<dataDir>/node-<id>`; a restart on the same dir keeps the data. */
  dataDir: string
  /** How many nodes, each a broker and a voter of the controller quorum; default 3, at least 3. */
  brokers?: number
  /** Client port of node 1, node i has `basePort + i - 1`; 0 or undefined: the ports of the last start on this dataDir, else free ones. */
  basePort?: number
  /** Controller port of node 1, likewise; 0 or undefined: free ones. Ignored once the dataDir is formatted. */
  baseControllerPort?: number
  /** JVM heap options of each node; default `-Xms64m -Xmx384m`. */
  heap?: string
  /** How long the cluster (or a restarted node) may take to serve requests once the jars are there; default 120 s. */
  startTimeoutMs?: number
}

export interface LocalKafkaNode {
  /** The node's `node.id`, 1 to the number of nodes. */
  readonly id: number
  /** Its client (PLAINTEXT) port on 127.0.0.1. */
  readonly port: number
  readonly address: string
  /** Process id of its JVM: the running one, else the last one. */
  readonly pid: number
  readonly running: boolean
  /** Starts the node again after `stop()` or `kill()`; resolves once the cluster lists it as a broker. No-op while it runs. */
  start(): Promise<void>
  /** Stops the node (SIGTERM, then SIGKILL after 15 s); safe to call more than once. */
  stop(): Promise<void>
  /** Sends `signal` to the node's JVM (a crash, where `stop()` is a shutdown); resolves once it is gone. */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>
}

export interface LocalKafkaCluster {
  /** Every node's client address, for KAFKA_BROKERS. */
  brokers: string[]
  nodes: LocalKafkaNode[]
  /** Stops every node; safe to call more than once. */
  stop(): Promise<void>
}

/** What a data dir's nodes were formatted with: they must all share it, for good. */
interface ClusterIdentity { clusterId: string, brokers: number }

/** Replicas of each partition, and how many must have a record before acks=-1 answers. */
const REPLICATION_FACTOR = 3
const MIN_INSYNC_REPLICAS = 2
const DEFAULT_HEAP = '-Xms64m -Xmx384m'
const DEFAULT_START_TIMEOUT_MS = 120_000

/**
 * Starts a cluster of `brokers` KRaft nodes on 127.0.0.1 (replication factor 3 and
 * min.insync.replicas 2 by default, internal topics included) and resolves once every node is a
 * broker of the cluster, consumer groups can be coordinated and every partition has a leader.
 */
export async function startLocalKafkaCluster (opts: LocalKafkaClusterOptions): Promise<LocalKafkaCluster> {
  const log = opts.log ?? noop
  const count = opts.brokers ?? 3
  if (!Number.isInteger(count) || count < REPLICATION_FACTOR) {
    throw new RangeError(`A local Kafka cluster has at least ${REPLICATION_FACTOR} brokers (got ${count}); for one, use startLocalKafka`)
  }
  await checkJava()
  const libs = await ensureKafkaJars(opts)
  const startedAt = performance.now()
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS

  await mkdir(opts.dataDir, { recursive: true })
  const ids = Array.from({ length: count }, (_, i) => i + 1)
  const layouts = ids.map(id => nodeLayout(join(opts.dataDir, `node-${id}`)))
  const { clusterId } = await clusterIdentity(opts.dataDir, count, layouts.some(isFormatted))
  const free = await freePorts(2 * count)
  const ports: NodePorts[] = []
  for (const [i, layout] of layouts.entries()) {
    const requested = { port: opts.basePort && opts.basePort + i, controllerPort: opts.baseControllerPort && opts.baseControllerPort + i }
    const hint = 'choose other ports (`npm run kafka -- --port <first> --controller-port <first>`)'
    ports.push(await choosePorts(layout, requested, { port: free[2 * i] ?? 0, controllerPort: free[2 * i + 1] ?? 0 },
      { port: hint, controllerPort: hint }, log))
  }
  const voters = ids.map((id, i) => `${id}@127.0.0.1:${ports[i]?.controllerPort ?? 0}`).join(',')
  const nodes = ids.map((id, i) => new ClusterNode(libs, {
    id,
    layout: layouts[i]!,
    ports: ports[i]!,
    voters,
    replicationFactor: REPLICATION_FACTOR,
    minInsyncReplicas: MIN_INSYNC_REPLICAS,
    clusterId,
    heap: opts.heap ?? DEFAULT_HEAP
  }, timeoutMs, log))
  const stop = async (): Promise<void> => { await Promise.all(nodes.map(async node => await node.stop())) }

  try {
    // In parallel: no node can be ready before a majority of the quorum runs.
    const started = await Promise.allSettled(nodes.map(async node => await node.start()))
    const failed = started.find(result => result.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    await waitUntilReady(nodes[0]!.address, allBrokers(count), timeoutMs, nodes.map(node => node.process!))
  } catch (err) {
    await stop()
    throw err
  }
  const brokers = nodes.map(node => node.address)
  log(`Kafka cluster of ${count} brokers ready at ${brokers.join(',')} in ${secondsSince(startedAt)} s`)
  return { brokers, nodes, stop }
}

class ClusterNode implements LocalKafkaNode {
  readonly #libs: string
  readonly #settings: NodeSettings
  readonly #timeoutMs: number
  readonly #log: Log
  #process: NodeProcess | undefined
  #exited = true
  #starting: Promise<void> | undefined

  constructor (libs: string, settings: NodeSettings, timeoutMs: number, log: Log) {
    this.#libs = libs
    this.#settings = settings
    this.#timeoutMs = timeoutMs
    this.#log = log
  }

  get id (): number { return this.#settings.id }
  get port (): number { return this.#settings.ports.port }
  get address (): string { return `127.0.0.1:${this.port}` }
  get pid (): number { return this.#process?.pid ?? 0 }
  get running (): boolean { return !this.#exited }
  get process (): NodeProcess | undefined { return this.#process }

  async start (): Promise<void> {
    if (this.#starting !== undefined) return await this.#starting
    if (this.running) return
    this.#starting = (async () => {
      const node = await startNode(this.#libs, this.#settings, { ready: listsBroker(this.id), timeoutMs: this.#timeoutMs, log: this.#log })
      this.#process = node
      this.#exited = false
      void node.exited.then(() => { if (this.#process === node) this.#exited = true })
    })()
    try {
      await this.#starting
    } finally {
      this.#starting = undefined
    }
  }

  async stop (): Promise<void> {
    await this.#starting?.catch(() => {})
    await this.#process?.stop()
  }

  async kill (signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    await this.#starting?.catch(() => {})
    await this.#process?.kill(signal)
  }
}

/** A data dir's cluster id and size: recorded at its first start, then kept. */
async function clusterIdentity (dataDir: string, brokers: number, formatted: boolean): Promise<ClusterIdentity> {
  const file = join(dataDir, 'cluster.json')
  const stored = await readFile(file, 'utf8').then(text => JSON.parse(text) as ClusterIdentity).catch(() => undefined)
  if (stored === undefined && formatted) {
    throw new LocalKafkaError('START_FAILED', `${dataDir} holds Kafka nodes but not ${file}, which records their cluster id; delete ${dataDir} to start afresh.`)
  }
  if (stored !== undefined && stored.brokers !== brokers) {
    // Every node's quorum names every voter: another count would be another cluster.
    throw new LocalKafkaError('START_FAILED',
      `${dataDir} holds a cluster of ${stored.brokers} Kafka brokers, not ${brokers}: start it with ${stored.brokers}, or delete ${dataDir} to start afresh.`)
  }
  if (stored !== undefined) return stored
  const identity = { clusterId: newClusterId(), brokers }
  await writeFile(file, JSON.stringify(identity) + '\n')
  return identity
}

function listsBroker (id: number): Readiness {
  return async (admin: Admin) => {
    const { brokers } = await admin.describeCluster()
    if (!brokers.some(broker => broker.nodeId === id)) throw new Error(`broker ${id} is not in the cluster yet`)
  }
}

// On a restarted cluster, the partitions of existing topics get their leaders back only once
// their brokers are in: until then their clients would be answered LEADER_NOT_AVAILABLE.
function allBrokers (count: number): Readiness {
  return async (admin: Admin) => {
    const { brokers } = await admin.describeCluster()
    if (brokers.length < count) throw new Error(`${brokers.length} of ${count} brokers are in the cluster`)
    await groupsServed(admin)
    const { topics } = await admin.fetchTopicMetadata()
    const leaderless = topics.filter(topic => topic.partitions.some(partition => partition.leader < 0))
    if (leaderless.length > 0) throw new Error(`partitions of ${leaderless.map(topic => topic.name).join(', ')} have no leader yet`)
    // The metadata can name a leader that does not serve yet (LEADER_NOT_AVAILABLE): ask each one.
    for (const topic of topics) {
      if (!topic.name.startsWith('__')) await admin.fetchTopicOffsets(topic.name)
    }
  }
}

function noop (): void {}

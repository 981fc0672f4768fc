// A throwaway redis-server on a free loopback port, nothing persisted, from Debian's
// `redis-server` package, for the tests, the bench and `npm run cluster`.
import { execFile } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePorts } from './ports.js'
import { startWatched, type WatchedProcess } from './watchdog.js'

export const REDIS_INSTALL_HINT = 'redis-server is not installed (not on PATH): apt-get install redis-server'
const READY_LINE = 'Ready to accept connections'
const START_TIMEOUT_MS = 10_000
/** Seconds from SIGTERM to SIGKILL: redis-server stops at once unless something is wrong. */
const STOP_GRACE_SECONDS = 5
/** Characters of redis-server's log kept for an error message: its start is all that tells why. */
const MAX_OUTPUT = 10_000
/** `redis-cli --cluster create` and the wait for `cluster_state:ok` on every node, each. */
const CLUSTER_TIMEOUT_MS = 20_000

export interface LocalRedis {
  url: string
  port: number
  /** Stops the server (its clients see the connection close); what it held is gone. Safe to repeat. */
  stop (): Promise<void>
  /** Starts it again on the same port, empty. */
  start (): Promise<void>
}

export interface LocalRedisCluster {
  /** The seed nodes, as REDIS_URL takes them with REDIS_CLUSTER=1: `redis://127.0.0.1:p1,redis://127.0.0.1:p2,…`. */
  url: string
  /** The masters' ports, in the order of `stopNode`/`startNode`'s index. */
  ports: number[]
  /** Stops every node and removes their directory. Safe to repeat. */
  stop (): Promise<void>
  /** Stops node `index` (its clients see the connection close; its slots are unserved until it is back). */
  stopNode (index: number): Promise<void>
  /** Starts node `index` again on its port with its nodes.conf, so it rejoins with its slots (empty). */
  startNode (index: number): Promise<void>
}

/** The redis-server binary on PATH, or undefined. */
export function redisServerPath (): string | undefined {
  return onPath('redis-server')
}

function onPath (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

/**
 * Starts `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no` on a free port (or
 * `port`). A watchdog kills it if this process dies without calling `stop`. Throws when
 * redis-server is not installed.
 */
export async function startLocalRedis (options: { port?: number } = {}): Promise<LocalRedis> {
  const bin = redisServerPath()
  if (bin === undefined) throw new Error(REDIS_INSTALL_HINT)
  let server: WatchedProcess | undefined
  let port = options.port ?? 0
  for (let attempt = 1; ; attempt++) {
    if (options.port === undefined) [port] = await freePorts(1) as [number]
    try {
      server = await startRedisServer(bin, port)
      break
    } catch (error) {
      // A port taken between the probe and the start, three times, is not a race.
      if (attempt === 3 || options.port !== undefined) throw error
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await server?.stop()
      server = undefined
    },
    start: async () => {
      if (server !== undefined) throw new Error('redis-server is already running')
      server = await startRedisServer(bin, port)
    }
  }
}

/**
 * Starts a Redis Cluster of `masters` nodes without replicas, each a redis-server as
 * `startLocalRedis` starts one, plus `--cluster-enabled yes` with its nodes.conf in a temp dir and
 * its cluster bus on a free port of its own (the default, port + 10000, may be taken or past
 * 65535); then `redis-cli --cluster create`, and resolves once every node says `cluster_state:ok`.
 */
export async function startLocalRedisCluster (options: { masters: number }): Promise<LocalRedisCluster> {
  const bin = redisServerPath()
  const cli = onPath('redis-cli')
  if (bin === undefined || cli === undefined) throw new Error(REDIS_INSTALL_HINT)
  const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'))
  const all = await freePorts(2 * options.masters)
  const ports = all.slice(0, options.masters)
  const args = ports.map((port, i) => ['--cluster-enabled', 'yes', '--cluster-port', String(all[options.masters + i]), '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir])
  const servers: Array<WatchedProcess | undefined> = []
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map(async (server) => await server?.stop()))
    servers.fill(undefined)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    servers.push(...await Promise.all(ports.map(async (port, i) => await startRedisServer(bin, port, args[i]!))))
    await promisify(execFile)(cli, ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: CLUSTER_TIMEOUT_MS })
    await Promise.all(ports.map(async (port) => await clusterStateOk(port)))
  } catch (error) {
    await stop()
    throw error
  }
  return {
    url: ports.map((port) => `redis://127.0.0.1:${port}`).join(','),
    ports,
    stop,
    stopNode: async (index) => {
      await servers[index]?.stop()
      servers[index] = undefined
    },
    startNode: async (index) => {
      if (servers[index] !== undefined) throw new Error(`redis-server ${index} is already running`)
      servers[index] = await startRedisServer(bin, ports[index]!, args[index]!)
      await clusterStateOk(ports[index]!)
    }
  }
}

/** Resolves once the node on `port` says `cluster_state:ok` (every slot served); rejects after CLUSTER_TIMEOUT_MS. */
async function clusterStateOk (port: number): Promise<void> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  const deadline = Date.now() + CLUSTER_TIMEOUT_MS
  let info = ''
  try {
    while (!info.includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port}: no cluster_state:ok within ${CLUSTER_TIMEOUT_MS} ms (${info.split('\r\n')[0] ?? ''})`)
      info = await client.call('CLUSTER', 'INFO').then(String, () => '')
      if (!info.includes('cluster_state:ok')) await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    client.disconnect()
  }
}

/** One redis-server under the watchdog (watchdog.ts), resolved once it accepts connections; `args` follow the common options. */
async function startRedisServer (bin: string, port: number, args: readonly string[] = []): Promise<WatchedProcess> {
  let output = ''
  let sawReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => { sawReady = resolve })
  const server = await startWatched(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], {
    name: 'redis-watchdog',
    graceSeconds: STOP_GRACE_SECONDS,
    onLine: (line) => {
      // Its log is read to the end, or a full pipe would block it; only the start is kept.
      if (output.length < MAX_OUTPUT) output += `${line}\n`
      if (line.includes(READY_LINE)) sawReady()
    }
  })
  const tail = (): string => output.trim().split('\n').slice(-3).join(' | ')
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      ready,
      server.exited.then(() => { throw new Error(`redis-server exited on port ${port}: ${tail()}`) }),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port} within ${START_TIMEOUT_MS} ms: ${tail()}`)), START_TIMEOUT_MS) })
    ])
  } catch (error) {
    await server.stop()
    throw error
  } finally {
    clearTimeout(timer)
  }
  return server
}

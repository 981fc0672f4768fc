import { Cluster, Redis } from 'ioredis'
import type { Logger } from './logger.js'

/** A connection to one Redis server or to a Redis Cluster: the commands the gateway sends work on both. */
export type RedisClient = Redis | Cluster

/** Where Redis is: one `redis://`/`rediss://` URL, or with `cluster` the comma-separated URLs of seed nodes. */
export interface RedisTarget {
  url: string
  cluster: boolean
}

/** The ioredis settings the gateway's connections differ in. */
export interface ConnectionOptions {
  commandTimeout?: number
  /** One server only: a cluster never queues while it is down (see `connectCluster`). */
  enableOfflineQueue?: boolean
  autoResubscribe?: boolean
  maxRetriesPerRequest?: number
  /** Cluster only: the commands of one tick go out as one pipeline per node. */
  enableAutoPipelining?: boolean
  /** Cluster only: SSUBSCRIBE goes to a subscriber connection of the shard that owns the channel. */
  shardedSubscribers?: boolean
}

/** Reconnects 100 ms, 200 ms… up to 2 s apart, forever. */
const retryDelay = (attempt: number): number => Math.min(attempt * 100, 2000)
/** How often `watchLink` pings; a ping still unanswered at the next one means the link is dead. */
const LINK_PING_MS = 3000

/**
 * One ioredis connection (or cluster client) of this gateway, named `kafka-notify:<role>` in
 * `CLIENT LIST`. It reconnects forever and logs one line when the connection is lost and one when
 * it is back, not one per attempt.
 */
export function connectRedis (target: RedisTarget, role: string, log: Logger, options: ConnectionOptions = {}): RedisClient {
  return target.cluster ? connectCluster(target.url, role, log, options) : connectServer(target.url, role, log, options)
}

/** `connectRedis` for one server. */
export function connectServer (url: string, role: string, log: Logger, options: ConnectionOptions = {}): Redis {
  const { enableAutoPipelining, shardedSubscribers, ...server } = options
  return logged(new Redis(url, { retryStrategy: retryDelay, ...server, connectionName: `kafka-notify:${role}` }), role, log)
}

/**
 * `connectRedis` for a Redis Cluster, from its seed nodes (credentials and TLS from the first URL
 * apply to every node). Commands sent while the cluster is not ready fail at once instead of
 * queueing: ioredis would queue them without a timeout or a bound, for as long as it is down.
 */
export function connectCluster (urls: string, role: string, log: Logger, options: ConnectionOptions = {}): Cluster {
  const seeds = parseSeeds(urls)
  const { enableOfflineQueue, autoResubscribe, enableAutoPipelining, shardedSubscribers, ...node } = options
  const first = seeds[0]!
  const redisOptions = {
    ...node,
    connectionName: `kafka-notify:${role}`,
    ...(first.username === undefined ? {} : { username: first.username }),
    ...(first.password === undefined ? {} : { password: first.password }),
    ...(first.tls ? { tls: {} } : {})
  }
  return logged(new Cluster(seeds.map(({ host, port }) => ({ host, port })), {
    clusterRetryStrategy: retryDelay,
    enableOfflineQueue: false,
    enableAutoPipelining: enableAutoPipelining ?? false,
    shardedSubscribers: shardedSubscribers ?? false,
    redisOptions
  }), role, log)
}

export interface Seed {
  host: string
  port: number
  username?: string
  password?: string
  tls: boolean
}

/** The nodes of `redis://[user:password@]host[:port],…` (`rediss:` is TLS); throws on a URL that is not one. */
export function parseSeeds (urls: string): Seed[] {
  return urls.split(',').map((text) => {
    const url = new URL(text.trim())
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`not a redis:// URL: ${url.protocol}`)
    return {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 6379 : Number(url.port),
      ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
      ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
      tls: url.protocol === 'rediss:'
    }
  })
}

function logged<T extends RedisClient> (client: T, role: string, log: Logger): T {
  let up = false
  let closing = false
  client.on('ready', () => {
    up = true
    log.info({ role }, 'Redis connected')
  })
  client.on('close', () => {
    if (up && !closing && client.status !== 'end') log.warn({ role }, 'Redis connection lost; reconnecting')
    up = false
  })
  client.on('error', (error: Error) => log.debug({ err: error, role }, 'Redis connection error'))
  client.on('end', () => { closing = true })
  return client
}

/** A connection's liveness as `watchLink` sees it. */
export interface LinkWatch {
  /** Set from a ping that went unanswered until the connection is ready again, for /readyz. */
  unreadyReason (): string | undefined
}

/**
 * Pings one server's connection every `everyMs` and, when a ping is still unanswered at the next,
 * drops the connection, which reconnects like after any loss. A link that a NAT or a balancer
 * forgot delivers nothing and closes nothing: without this, ioredis would call it `ready` until
 * TCP keepalive gives up (minutes to hours), and a subscriber would hear nothing all that time.
 * `onReset` is told each time.
 */
export function watchLink (client: Redis, role: string, log: Logger, onReset?: () => void, everyMs = LINK_PING_MS): LinkWatch {
  let unanswered = false
  /** Bumped at every close: an answer on an earlier connection says nothing of this one. */
  let connection = 0
  let reset: string | undefined
  let lastTick = Date.now()
  client.on('ready', () => { reset = undefined })
  client.on('close', () => {
    connection++
    unanswered = false
  })
  const timer = setInterval(() => {
    const now = Date.now()
    // A tick this late means the process was stuck, and the answer may be waiting unread: judge at the next one.
    const late = now - lastTick > everyMs * 1.5
    lastTick = now
    if (client.status !== 'ready') return
    if (unanswered) {
      if (late) return
      reset = `Redis ${role} did not answer a ping within ${everyMs} ms; reconnecting`
      log.warn({ role }, 'Redis did not answer a ping: the link is dead, reconnecting')
      onReset?.()
      client.stream.destroy()
      return
    }
    unanswered = true
    const pinged = connection
    client.ping().then(() => { if (pinged === connection) unanswered = false }, () => {})
  }, everyMs).unref()
  client.on('end', () => clearInterval(timer))
  return { unreadyReason: () => reset }
}

/** Closes a connection: QUIT when it is up (replies in flight still arrive), else at once. */
export async function quitRedis (client: RedisClient): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  try {
    await client.quit()
  } catch {
    client.disconnect()
  }
}

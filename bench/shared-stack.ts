import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { Client } from 'pg'
import { startLocalPostgres } from '../local/postgres.js'
import { startLocalRedis } from '../local/redis.js'
import type { Cleanup } from './cleanup.js'
import type { BenchGateway } from './gateway.js'
import type { Stack } from './stack.js'

/** Several gateways on one topic and consumer group, sharing a PostgreSQL inbox and a Redis fan-out. */
export interface SharedStack {
  gateways: BenchGateway[]
  topic: string
  groupId: string
  databaseUrl: string
  redisUrl: string
  /** The postmaster (its backends are its children) and the redis-server process. */
  postgresPid: number | undefined
  redisPid: number | undefined
  stop (): Promise<void>
}

/** Every gateway consumes: at least one partition each. */
const MIN_PARTITIONS = 6
const QUERY_TIMEOUT_MS = 10_000

/**
 * Starts PostgreSQL, Redis and `count` gateways (one after the other, so the inbox schema and the
 * topic are made once) with DATABASE_URL and REDIS_URL, on a topic and group of their own so the
 * stack's SQLite gateway does not consume their records. Each piece is registered with `cleanup`
 * as it starts; `stop` stops them all earlier.
 */
export async function startSharedStack (stack: Stack, count: number, cleanup: Cleanup, log: (line: string) => void): Promise<SharedStack> {
  const launch = stack.launchGateway
  if (launch === undefined) throw new Error('the gateways are given (GATEWAY_URL): the bench cannot start more')
  const stops: Array<() => Promise<void>> = []
  const register = (name: string, stop: () => Promise<void>): void => {
    stops.push(stop)
    cleanup.add(name, stop)
  }
  const stop = async (): Promise<void> => {
    for (const undo of stops.splice(0).reverse()) await undo().catch(() => {})
  }
  try {
    log('Starting PostgreSQL and Redis for the shared gateways…')
    const [postgres, redis] = await Promise.all([startLocalPostgres(), startLocalRedis()])
    register('PostgreSQL', () => postgres.stop())
    register('Redis', () => redis.stop())
    const databaseUrl = await postgres.createDatabase()
    const topic = `${stack.topic}-shared`
    const groupId = `notify-gateway-shared-${Date.now()}`
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      KAFKA_TOPIC: topic,
      KAFKA_DLQ_TOPIC: `${topic}.dlq`,
      KAFKA_GROUP_ID: groupId,
      KAFKA_PARTITIONS: String(Math.max(MIN_PARTITIONS, count))
    }
    const gateways: BenchGateway[] = []
    for (let k = 1; k <= count; k++) {
      log(`Starting gateway ${k} of ${count} with DATABASE_URL and REDIS_URL…`)
      // A client id of its own, so the group's members can be told apart.
      const gateway = await launch(`gateway-${k}`, { ...env, KAFKA_CLIENT_ID: `gateway-${k}` })
      register(`gateway ${k}`, async () => { await gateway.stop() })
      gateways.push(gateway)
    }
    return { gateways, topic, groupId, databaseUrl, redisUrl: redis.url, postgresPid: await postmasterPid(databaseUrl), redisPid: await redisPid(redis.url), stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** The parent of a backend is the postmaster. */
async function postmasterPid (url: string): Promise<number | undefined> {
  const client = new Client({ connectionString: url, query_timeout: QUERY_TIMEOUT_MS })
  try {
    await client.connect()
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    const status = readFileSync(`/proc/${rows[0]!.pid}/status`, 'utf8')
    return Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1]) || undefined
  } catch {
    return undefined
  } finally {
    await client.end().catch(() => {})
  }
}

async function redisPid (url: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, commandTimeout: QUERY_TIMEOUT_MS, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    return Number(/^process_id:(\d+)/m.exec(await client.info('server'))?.[1]) || undefined
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../server/app.js'
import type { Clock } from '../../server/clock.js'
import { loadConfig, type Config } from '../../server/config.js'
import type { NotificationBus } from '../../server/kafka/types.js'
import { createServices, type Services } from '../../server/services.js'

/** The bits of a tap test these helpers use (tap's `Test` has them). */
export interface TestContext {
  teardown (fn: () => unknown): void
}

/** The real app, built in the test's own process (a child process is a `SpawnedGateway`: gateway-process.ts). */
export interface Gateway {
  url: string
  app: FastifyInstance
  config: Config
  services: Services
  /** Stops the gateway now (teardown does it otherwise). */
  close (): Promise<void>
}

export interface GatewayOptions {
  /** Extra environment variables for the config (they win over the test defaults). */
  env?: Record<string, string>
  /** A stand-in for Kafka: unit tests of the routes only. */
  bus?: NotificationBus
  /** A fake clock for token expiry (FakeClock, started at Date.now()). */
  clock?: Clock
  /** Reuse a data dir (restart scenarios); a fresh temp dir otherwise. */
  dataDir?: string
  /** Do not listen: for `app.inject` tests. */
  listen?: boolean
  /** Collects the gateway's log lines (JSON, from level info up) instead of the test log level. */
  logLines?: string[]
}

/** A unique name for topics and groups, so tests sharing one broker never see each other's records. */
export function uniqueName (prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`
}

export function tempDir (t: TestContext, prefix = 'kafka-notify-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Tests that are not about limits send hundreds of follows as one user from one address. */
const LIMITS_OFF = {
  RATE_LIMIT_PER_USER: '0',
  RATE_LIMIT_PER_IP: '0',
  RATE_LIMIT_PER_SERVICE: '0',
  WS_MAX_CONNECTIONS_PER_USER: '0',
  WS_MAX_CONNECTIONS_PER_IP: '0'
}

/** Environment for a gateway on the test run's broker, in its own topics and group. */
export function testEnv (dataDir: string, env: Record<string, string> = {}): Record<string, string> {
  const topic = uniqueName('notifications')
  return {
    KAFKA_BROKERS: kafkaBrokers(),
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    KAFKA_GROUP_ID: uniqueName('group'),
    KAFKA_PARTITIONS: '2',
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...LIMITS_OFF,
    ...env
  }
}

export function kafkaBrokers (): string {
  const brokers = process.env.KAFKA_BROKERS
  if (brokers === undefined || brokers === '') {
    throw new Error('KAFKA_BROKERS is not set: run the tests with `npm test`, which starts a local broker')
  }
  return brokers
}

/** Builds the real app (real Kafka unless `bus` is given), listening on a free loopback port. */
export async function startGateway (t: TestContext, options: GatewayOptions = {}): Promise<Gateway> {
  const dataDir = options.dataDir ?? tempDir(t)
  const env = options.bus === undefined
    ? testEnv(dataDir, options.env)
    : { DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...LIMITS_OFF, ...options.env }
  const lines = options.logLines
  const config = loadConfig(lines === undefined ? env : { ...env, LOG_LEVEL: 'info' })
  const logger = lines === undefined ? pino({ level: config.logLevel }) : pino({ level: config.logLevel }, { write: (line: string) => { lines.push(line) } })
  const services = await createServices(config, logger, {
    ...(options.bus === undefined ? {} : { bus: options.bus }),
    ...(options.clock === undefined ? {} : { clock: options.clock })
  })
  const app = await buildApp(config, services, { logger })
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await app.close()
  }
  t.teardown(close)
  if (options.listen === false) {
    await app.ready()
    return { url: '', app, config, services, close }
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { url: `http://127.0.0.1:${port}`, app, config, services, close }
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { GatewayRuntime } from '../local/gateway-process.js'
import { startLocalKafka } from '../local/kafka/launcher.js'
import { freePorts } from '../local/ports.js'
import type { User } from '../server/directory.js'
import type { Cleanup } from './cleanup.js'
import { buildGateway, startBenchGateway, type BenchGateway } from './gateway.js'
import type { Settings } from './settings.js'
import type { TokenSource } from './tokens.js'

/** The broker and gateway under test, started here or given by the environment. */
export interface Stack {
  url: string
  /** Unset when only GATEWAY_URL was given: the phases that write to Kafka are skipped. */
  brokers: string[] | undefined
  topic: string
  gateway: BenchGateway | undefined
  /** The gateway's Node process, when known (started here, or GATEWAY_PID). */
  gatewayPid: number | undefined
  brokerPid: number | undefined
  runtime: GatewayRuntime | 'external'
  tokens: TokenSource
  users: User[]
  /** The gateway's environment as the bench set it (AUTH_SECRET masked). */
  gatewayEnv: Record<string, string>
  /**
   * Starts one more gateway like the first (same build, users, secret and broker) with `env` on
   * top, on a port and data dir of its own; the caller stops it. Unset for a given GATEWAY_URL.
   */
  launchGateway: ((name: string, env: Record<string, string>) => Promise<BenchGateway>) | undefined
}

/** Fixed so the bench can sign the gateway's dev tokens itself instead of 20,000 sign-ins. */
const BENCH_SECRET = 'kafka-notify-bench-secret-not-for-production'

export async function startStack (settings: Settings & { profile: boolean, gatewayRuntime: GatewayRuntime }, cleanup: Cleanup, log: (line: string) => void, profileDir: string): Promise<Stack> {
  const givenUrl = process.env.GATEWAY_URL?.replace(/\/+$/, '')
  const givenBrokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean)
  if (givenUrl !== undefined && givenUrl !== '') return await externalGateway(givenUrl, givenBrokers)

  const dir = await mkdtemp(join(tmpdir(), 'kafka-notify-bench-'))
  cleanup.add('temporary directory', () => rm(dir, { recursive: true, force: true }))

  const build = settings.gatewayRuntime === 'dist' ? buildGateway() : undefined
  let brokers = givenBrokers
  let brokerPid: number | undefined
  if (brokers === undefined || brokers.length === 0) {
    log('Starting the local Kafka broker…')
    const kafka = await startLocalKafka({ dataDir: dir, log: (line) => log(`kafka: ${line}`) })
    cleanup.add('Kafka broker', () => kafka.stop())
    brokers = kafka.brokers
    brokerPid = kafka.pid
  }

  let runtime = settings.gatewayRuntime
  if (build !== undefined) {
    const built = await build
    if (!built.ok) {
      log(`tsc -b tsconfig.build.json failed; running the gateway from its sources through tsx instead:\n${built.output.split('\n').slice(0, 10).join('\n')}`)
      runtime = 'tsx'
    }
  }

  const users = Array.from({ length: settings.users }, (_, i) => ({ id: `u${i + 1}`, name: `User ${i + 1}` }))
  const usersFile = join(dir, 'users.json')
  await writeFile(usersFile, JSON.stringify(users))
  // A broker of one's own may hold other topics and groups: keep the bench's apart.
  const suffix = givenBrokers === undefined ? '' : `-bench-${Date.now()}`
  const topic = `notifications${suffix}`
  const base: Record<string, string> = {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    USERS_FILE: usersFile,
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    KAFKA_GROUP_ID: `notify-gateway${suffix}`,
    AUTH_MODE: 'dev',
    AUTH_SECRET: BENCH_SECRET,
    WS_HEARTBEAT_MS: String(settings.heartbeatMs),
    // Catch-up replays 1,000 missed notifications from a cursor that must still be in the inbox.
    INBOX_MAX_PER_USER: '100000',
    // The bench's whole load comes from one address and a thousand users.
    RATE_LIMIT_PER_USER: '0',
    RATE_LIMIT_PER_IP: '0',
    RATE_LIMIT_PER_SERVICE: '0',
    WS_MAX_CONNECTIONS_PER_USER: '0',
    WS_MAX_CONNECTIONS_PER_IP: '0'
  }
  const [port] = await freePorts(1) as [number]
  const env = { ...base, PORT: String(port), DATA_DIR: join(dir, 'gateway') }
  log(`Starting the gateway (${runtime === 'dist' ? 'node dist/server/main.js' : 'node --import tsx server/main.ts'})…`)
  const gateway = await startBenchGateway({ port, env, runtime, cwd: dir, profileDir: settings.profile ? profileDir : undefined, log })
  cleanup.add('gateway', async () => { await gateway.stop() })
  const launchGateway = async (name: string, extra: Record<string, string>): Promise<BenchGateway> => {
    const [port] = await freePorts(1) as [number]
    return await startBenchGateway({
      port,
      env: { ...base, PORT: String(port), DATA_DIR: join(dir, name), ...extra },
      runtime,
      cwd: dir,
      log: (line) => log(`${name}: ${line}`)
    })
  }
  return {
    url: gateway.url,
    brokers,
    topic,
    gateway,
    gatewayPid: gateway.pid,
    brokerPid,
    runtime,
    tokens: { kind: 'secret', secret: BENCH_SECRET },
    users,
    gatewayEnv: { ...env, AUTH_SECRET: '(fixed bench secret)' },
    launchGateway
  }
}

async function externalGateway (url: string, brokers: string[] | undefined): Promise<Stack> {
  const response = await fetch(`${url}/api/users`, { signal: AbortSignal.timeout(10_000) })
  if (response.status !== 200) throw new Error(`GET ${url}/api/users answered ${response.status}`)
  const { users } = await response.json() as { users: User[] }
  const secret = process.env.AUTH_SECRET
  const pid = Number(process.env.GATEWAY_PID) || undefined
  return {
    url,
    brokers,
    topic: process.env.KAFKA_TOPIC ?? 'notifications',
    gateway: undefined,
    gatewayPid: pid,
    brokerPid: undefined,
    runtime: 'external',
    tokens: secret === undefined || secret === '' ? { kind: 'sessions', url } : { kind: 'secret', secret },
    users,
    gatewayEnv: {},
    launchGateway: undefined
  }
}

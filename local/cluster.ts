// `npm run cluster -- [--port FIRST_PORT] [--gateways N]`: the whole system on this machine, in the
// foreground, for people who want to see several gateways be one: a 3-broker KRaft cluster, a
// throwaway PostgreSQL (the shared inbox) and Redis (the fan-out), and N gateways (default 2) on
// consecutive ports. Its own lines and the gateways' logs go to stdout; failures to stderr.
// SIGINT or SIGTERM stops the gateways first, then Redis, PostgreSQL and the brokers, and removes
// the temp dir; a second Ctrl-C exits at once (every child runs under a watchdog that stops it
// when this process dies). A gateway that dies stops everything, with exit code 1.
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startLocalKafkaCluster, type LocalKafkaCluster } from './kafka/cluster.js'
import { isFree } from './ports.js'
import { onStopSignals } from '../server/stop-signals.js'
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js'
import { readableLogLine } from './log-line.js'
import { POSTGRES_INSTALL_HINT, postgresBinDir, startLocalPostgres, type LocalPostgres } from './postgres.js'
import { REDIS_INSTALL_HINT, redisServerPath, startLocalRedis, type LocalRedis } from './redis.js'
import { makeRunDir } from './run-dir.js'

const USAGE = 'usage: npm run cluster -- [--port FIRST_PORT] [--gateways N]'
const BROKERS = 3
/** Partitions of the topic: each gateway of the group consumes some (a gateway beyond them gets none). */
const PARTITIONS = 6
const READY_TIMEOUT_MS = 120_000
/** The walk-through's pair: Emma on the first gateway, Bruno on the second. */
const DEMO_USERS = ['Emma', 'Bruno']

const say = (line: string): void => { process.stdout.write(`[cluster] ${line}\n`) }
const shout = (line: string): void => { process.stderr.write(`[cluster] ${line}\n`) }

/** What runs so far; the gateways by port. */
interface Started { kafka?: LocalKafkaCluster, postgres?: LocalPostgres, redis?: LocalRedis, gateways: Map<number, GatewayProcess> }

process.exitCode = await main()

async function main (): Promise<number> {
  let args
  try {
    args = parseArgs({ options: { port: { type: 'string', default: '3000' }, gateways: { type: 'string', default: '2' } } }).values
  } catch (error) {
    shout(`${(error as Error).message}\n${USAGE}`)
    return 2
  }
  const firstPort = Number(args.port)
  const count = Number(args.gateways)
  if (!Number.isInteger(count) || count < 1 || count > 16) {
    shout(`--gateways must be 1 to 16, not ${args.gateways}\n${USAGE}`)
    return 2
  }
  if (!Number.isInteger(firstPort) || firstPort < 1 || firstPort + count - 1 > 65535) {
    shout(`--port must be a port number, not ${args.port}\n${USAGE}`)
    return 2
  }
  // Before anything slow starts: what is missing, or in the way.
  for (const [missing, hint] of [[postgresBinDir() === undefined, POSTGRES_INSTALL_HINT], [redisServerPath() === undefined, REDIS_INSTALL_HINT]] as const) {
    if (missing) {
      shout(hint)
      return 1
    }
  }
  const ports = Array.from({ length: count }, (_, i) => firstPort + i)
  for (const port of ports) {
    if (!await isFree(port)) {
      shout(`Port ${port} on 127.0.0.1 is in use: choose other ports with --port <first>`)
      return 1
    }
  }

  const runDir = makeRunDir('kafka-notify-cluster-')
  const root = runDir.path
  const started: Started = { gateways: new Map() }
  let phase: 'starting' | 'running' | 'stopping' = 'starting'
  const stop = async (reason: string): Promise<number> => {
    phase = 'stopping'
    say(`${reason}: stopping the gateways, then Redis, PostgreSQL and the brokers (again to exit at once)`)
    return await stopAll(started, runDir.remove)
  }
  onStopSignals(() => phase === 'running', (signal) => { void stop(signal).then((code) => process.exit(code)) })

  const startedAt = performance.now()
  say(`starting ${BROKERS} Kafka brokers, PostgreSQL, Redis and ${count} gateway${count === 1 ? '' : 's'} in ${root}`)
  try {
    await startServices(started, root)
    const { kafka, postgres, redis } = started as Required<Started>
    const env = {
      KAFKA_BROKERS: kafka.brokers.join(','),
      DATABASE_URL: await postgres.createDatabase(),
      REDIS_URL: redis.url,
      // Dev tokens signed by one gateway must verify on the others; a new one per run.
      AUTH_SECRET: randomBytes(32).toString('base64url'),
      KAFKA_PARTITIONS: String(PARTITIONS),
      KAFKA_REPLICATION_FACTOR: String(BROKERS)
    }
    // All at once, as an orchestrator would start replicas: they race to create the topics.
    const urls = await Promise.all(ports.map(async (port) => {
      const dir = join(root, `gateway-${port}`)
      mkdirSync(dir)
      const gateway = await startGatewayProcess({
        port,
        cwd: dir,
        env: { ...env, DATA_DIR: dir },
        onLine: (line) => { process.stdout.write(`[gateway ${port}] ${readableLogLine(line)}\n`) }
      })
      started.gateways.set(port, gateway)
      return await gateway.ready(READY_TIMEOUT_MS)
    }))
    phase = 'running'
    say(`ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s: ${count} gateway${count === 1 ? '' : 's'}, one system`)
    for (const [i, name] of DEMO_USERS.entries()) {
      say(`  ${`${name}:`.padEnd(7)}open ${urls[i % count]!} and sign in as ${name}`)
    }
    for (const url of urls.slice(DEMO_USERS.length)) say(`  also:  ${url}`)
    say(`  In ${DEMO_USERS[1]!}'s window, click Follow next to ${DEMO_USERS[0]!}: it shows up in ${DEMO_USERS[0]!}'s at once.`)
    say(`  KAFKA_BROKERS=${env.KAFKA_BROKERS}`)
    say(`  DATABASE_URL=${env.DATABASE_URL}`)
    say(`  REDIS_URL=${env.REDIS_URL}`)
    say('Ctrl-C stops everything.')
  } catch (error) {
    shout(`could not start: ${(error as Error).message}`)
    await stopAll(started, runDir.remove)
    return 1
  }

  for (const [port, gateway] of started.gateways) {
    void gateway.exited.then(async (status) => {
      if (phase !== 'running') return
      shout(`!!! GATEWAY ${port} DIED (${status}): the cluster is broken, stopping everything !!!`)
      await stop(`gateway ${port} died`)
      process.exit(1)
    })
  }
  // The children do not keep Node running by themselves; a signal or a dead gateway ends this.
  setInterval(() => {}, 1 << 30)
  return 0
}

/** Kafka, PostgreSQL and Redis at once (the brokers take longest); each one in `started` as it comes up. */
async function startServices (started: Started, root: string): Promise<void> {
  const results = await Promise.allSettled([
    startLocalKafkaCluster({ dataDir: join(root, 'kafka'), brokers: BROKERS, log: (line) => { process.stdout.write(`[kafka] ${line}\n`) } }).then((kafka) => { started.kafka = kafka }),
    startLocalPostgres().then((postgres) => { started.postgres = postgres }),
    startLocalRedis().then((redis) => { started.redis = redis })
  ])
  const failed = results.find((result) => result.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

/**
 * Gateways first, while what they close against still runs, the run dir last; each step runs
 * whatever the one before did. Resolves with the exit code: 0 if every gateway stopped cleanly and nothing failed.
 */
async function stopAll (started: Started, removeRunDir: () => void): Promise<number> {
  let code = 0
  const statuses = await Promise.all([...started.gateways].map(async ([port, gateway]) => [port, await gateway.stop()] as const))
  for (const [port, status] of statuses) {
    if (status !== 'exit code 0') {
      shout(`the gateway on port ${port} stopped with ${status}`)
      code = 1
    }
  }
  for (const [name, service] of [['Redis', started.redis], ['PostgreSQL', started.postgres], ['the Kafka brokers', started.kafka]] as const) {
    try {
      await service?.stop()
    } catch (error) {
      shout(`stopping ${name} failed: ${(error as Error).message}`)
      code = 1
    }
  }
  removeRunDir()
  say(code === 0 ? 'stopped' : 'stopped, with errors (above)')
  return code
}

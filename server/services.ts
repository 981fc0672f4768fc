import { join } from 'node:path'
import { wallClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import { loadDirectory, type Directory } from './directory.js'
import { NotifyError } from './errors.js'
import { memoryTicketStore, redisTicketStore, Tickets } from './auth/tickets.js'
import { Tokens } from './auth/tokens.js'
import { LocalFanout } from './fanout/local-fanout.js'
import { RedisFanout } from './fanout/redis-fanout.js'
import type { Fanout } from './fanout/types.js'
import { createIngest } from './feed/ingest.js'
import { FeedRelay } from './feed/relay.js'
import { TailRepair } from './feed/tail-repair.js'
import { MemoryIdempotency } from './idempotency/memory.js'
import { RedisIdempotency } from './idempotency/redis.js'
import type { Idempotency } from './idempotency/types.js'
import { CloseCode } from './hub/close-codes.js'
import { Hub } from './hub/hub.js'
import { PostgresInbox } from './inbox/postgres-inbox.js'
import { startRetention } from './inbox/retention.js'
import { SqliteInbox } from './inbox/sqlite-inbox.js'
import { InboxRefusedError, type Inbox } from './inbox/types.js'
import { createKafkaBus } from './kafka/bus.js'
import type { NotificationBus } from './kafka/types.js'
import { CloseStack } from './lifecycle.js'
import type { Logger } from './logger.js'
import { Metrics } from './metrics.js'
import { connectRedis, quitRedis, type RedisClient } from './redis-connection.js'

/** Everything the routes work with. The app owns them from `buildApp` on and closes them. */
export interface Services {
  /** The wall clock that tokens' `exp` is read against: when a token expires, and a socket with it closes. */
  clock: Clock
  directory: Directory
  tokens: Tokens
  /** One-time tickets for streaming endpoints: in memory, or shared in Redis with REDIS_URL. */
  tickets: Tickets
  /** This gateway's open sockets, by user. */
  hub: Hub
  /** Carries frames to the gateways holding the recipient's sockets: in-process, or Redis with REDIS_URL. */
  fanout: Fanout
  /** Opens each socket's feed (catch-up) and hands it what the fan-out brings, in order and without holes. */
  relay: FeedRelay
  /** Publishes through the fan-out; republishes a user's newest frames from the inbox when a publish or an append may have lost them. */
  tail: TailRepair
  inbox: Inbox
  bus: NotificationBus
  metrics: Metrics
  /** `Idempotency-Key`s: this process's memory, or shared by every gateway in Redis with REDIS_URL. */
  idempotency: Idempotency
  /** With REDIS_URL: the connection for commands (rate limits, Idempotency-Keys), apart from the fan-out's. */
  redis: RedisClient | undefined
  /** Starts consuming in the background: each batch to the inbox, then the fan-out. Called once the app is ready. */
  startConsuming (): void
  /** Closes every service, the last created first, each whatever the others threw; once. */
  close (): Promise<void>
}

const DAY_MS = 24 * 60 * 60 * 1000
const IDEMPOTENCY_TTL_MS = DAY_MS
const IDEMPOTENCY_MAX_KEYS = 100_000
/**
 * A Redis command that takes longer fails: a rate limit is then skipped, and a follow with an
 * Idempotency-Key answers 503 (whether its key was used on another gateway is unknown).
 */
const REDIS_COMMAND_TIMEOUT_MS = 1000

/** Stand-ins for what createServices would make itself (unit tests). */
export interface GivenServices {
  /** A fake bus: no Kafka. */
  bus?: NotificationBus
  directory?: Directory
  /** A fake clock: token expiry moved by hand. */
  clock?: Clock
}

/**
 * Creates the services from the configuration. A start that fails half-way closes what it had
 * opened (newest first) before it rejects.
 */
export async function createServices (config: Config, log: Logger, given: GivenServices = {}): Promise<Services> {
  if (given.bus === undefined && config.kafka.brokers === undefined) throw new Error('KAFKA_BROKERS is not set and no local broker was started')
  const closing = new CloseStack()
  try {
    return await openServices(config, log, given, closing)
  } catch (error) {
    await closing.close(log)
    throw error
  }
}

/** Opens each service and declares its close on `closing` as soon as it exists. */
async function openServices (config: Config, log: Logger, given: GivenServices, closing: CloseStack): Promise<Services> {
  const clock = given.clock ?? wallClock
  const directory = given.directory ?? await loadDirectory(config.usersFile)
  const tokens = new Tokens(config.auth, directory, { clock })
  const metrics = new Metrics()
  const retention = { maxPerUser: config.inbox.maxPerUser, maxAgeMs: config.inbox.maxAgeDays * DAY_MS }
  const inbox: Inbox = config.databaseUrl === undefined
    ? new SqliteInbox(join(config.dataDir, 'inbox.sqlite'), retention, { groupWindowMs: config.groupWindowMs })
    : await PostgresInbox.open(config.databaseUrl, retention, {
      groupWindowMs: config.groupWindowMs,
      log: log.child({ component: 'inbox' }),
      poolSize: config.databasePoolSize,
      onReadRefused: () => metrics.inboxReadsRefused.inc()
    })
  closing.defer('close the inbox', () => inbox.close())
  closing.defer('stop inbox retention', startRetention(inbox, log))
  if ((config.databaseUrl === undefined) !== (config.redisUrl === undefined)) {
    log.warn(config.databaseUrl === undefined
      ? 'REDIS_URL is set without DATABASE_URL: each gateway keeps its own SQLite inbox, so history, read marks and catch-up differ by gateway'
      : 'DATABASE_URL is set without REDIS_URL: live frames reach only the sockets of the gateway that consumed the record; other gateways\' clients see them on reconnect')
  }
  // Frames flow fan-out → relay → sockets; the hub tells the fan-out whose frames are wanted here.
  const relay = new FeedRelay(inbox, {
    log,
    pingMs: config.ws.heartbeatMs,
    observer: {
      delivered (recordTimestamp, sockets) {
        if (sockets === 0) return
        metrics.delivered.inc()
        metrics.deliveryLatency.observe((Date.now() - recordTimestamp) / 1000)
      },
      filling: (cause) => metrics.feedFills.inc({ cause })
    }
  })
  closing.defer('stop the feed\'s pings', () => relay.stop())
  const fanout: Fanout = config.redisUrl === undefined
    ? new LocalFanout(relay)
    : new RedisFanout({
      url: config.redisUrl,
      cluster: config.redisCluster,
      receiver: relay,
      log: log.child({ component: 'redis' }),
      observer: {
        lost: (why, frames) => metrics.fanoutLostFrames.inc({ why }, frames),
        linkReset: (role) => metrics.redisLinkResets.inc({ role })
      }
    })
  closing.defer('close the fan-out', () => fanout.close())
  const tail = new TailRepair(inbox, fanout, { log, onRepaired: (users) => metrics.tailRepairs.inc(users) })
  closing.defer('stop repairing feed tails', () => tail.close())
  const hub = new Hub({
    heartbeatMs: config.ws.heartbeatMs,
    onDrop: (why) => metrics.disconnects.inc({ why }),
    // A user's frames are wanted here from their first socket to their last.
    onUserOnline: (userId) => fanout.watch(userId),
    onUserOffline: (userId) => fanout.unwatch(userId)
  })
  closing.defer('stop the hub\'s heartbeats', () => hub.stop())
  metrics.countConnections = () => hub.connectionCount
  const ingest = createIngest(inbox, fanout, tail, (seconds) => metrics.inboxAppend.observe(seconds))
  const redis = config.redisUrl === undefined
    ? undefined
    : connectRedis({ url: config.redisUrl, cluster: config.redisCluster }, 'commands', log.child({ component: 'redis' }), { commandTimeout: REDIS_COMMAND_TIMEOUT_MS, maxRetriesPerRequest: 1 })
  if (redis !== undefined) closing.defer('quit the Redis commands connection', () => quitRedis(redis))
  const tickets = new Tickets(redis === undefined ? memoryTicketStore() : redisTicketStore(redis))
  const idempotency: Idempotency = redis === undefined
    ? new MemoryIdempotency({ maxEntries: IDEMPOTENCY_MAX_KEYS, ttlMs: IDEMPOTENCY_TTL_MS })
    : new RedisIdempotency(redis, { ttlMs: IDEMPOTENCY_TTL_MS })
  if (inbox.newEpochReason === undefined) log.info({ epoch: inbox.epoch }, 'Inbox epoch continues: cursors issued before stay valid')
  else log.info({ epoch: inbox.epoch, why: inbox.newEpochReason }, `Inbox epoch is new (${inbox.newEpochReason}): clients resuming with older cursors get reset`)
  const bus = given.bus ?? await createKafkaBus({
    ...config.kafka,
    brokers: config.kafka.brokers ?? [],
    beforeCommit: () => inbox.flush(),
    isTransientFailure: (error) => error instanceof NotifyError && error.canRetry,
    isRecordRefusal: (error) => error instanceof InboxRefusedError,
    storedPositions: async (committed) => {
      const { stored, epochChanged } = await inbox.reconcile(config.kafka.topic, committed)
      if (epochChanged !== undefined) {
        log.warn({ epoch: inbox.epoch, why: epochChanged }, `Inbox epoch is new (${epochChanged}): clients resuming with older cursors get reset`)
        // Open tabs hold seqs of the old epoch, which new notifications may take again: they resume, and are reset.
        hub.disconnectAll(CloseCode.FEED_GAP, 'the inbox began a new epoch: reconnect with since')
      }
      return stored
    },
    onDeadLetter: (kind) => metrics.deadLetters.inc({ reason: kind }),
    onLag: (partition, lag) => metrics.consumerLag.set({ partition: String(partition) }, lag),
    onConsumerCrash: (crash) => metrics.consumerCrashes.inc({ restarted_by: crash.restartedBy }),
    onConsumerRestart: () => metrics.consumerRestarts.inc(),
    onConsumerHold: () => metrics.consumerHolds.inc()
  }, log.child({ component: 'kafka' }))
  closing.defer('close the Kafka clients (committing consumed offsets, disconnecting the producer)', () => bus.close())
  if (bus.producerStats !== undefined) metrics.producerStats = () => bus.producerStats!()
  return { clock, directory, tokens, tickets, hub, fanout, relay, tail, inbox, bus, metrics, idempotency, redis, startConsuming: () => bus.startConsuming(ingest), close: () => closing.close(log) }
}

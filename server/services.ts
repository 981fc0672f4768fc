import { join } from 'node:path'
import type { Config } from './config.js'
import { loadDirectory, type Directory } from './directory.js'
import { Tokens } from './auth/tokens.js'
import { Hub } from './hub/hub.js'
import { SqliteInbox } from './inbox/sqlite-inbox.js'
import type { Inbox } from './inbox/types.js'
import { createKafkaBus } from './kafka/bus.js'
import type { NotificationBus } from './kafka/types.js'
import type { Logger } from './logger.js'
import { Metrics } from './metrics.js'

/** Everything the routes work with. The app owns them from `buildApp` on and closes them. */
export interface Services {
  directory: Directory
  tokens: Tokens
  hub: Hub
  inbox: Inbox
  bus: NotificationBus
  metrics: Metrics
}

const DAY_MS = 24 * 60 * 60 * 1000

/** Creates the services from the configuration; `bus` may be given (a fake, in unit tests). */
export async function createServices (
  config: Config,
  log: Logger,
  given: { bus?: NotificationBus, directory?: Directory } = {}
): Promise<Services> {
  const directory = given.directory ?? await loadDirectory(config.usersFile)
  const tokens = new Tokens(config.auth, directory)
  const metrics = new Metrics(() => hub.connectionCount)
  const hub = new Hub({
    heartbeatMs: config.ws.heartbeatMs,
    onDrop: (why) => metrics.disconnects.inc({ why })
  })
  const inbox = new SqliteInbox(join(config.dataDir, 'inbox.sqlite'), {
    maxPerUser: config.inbox.maxPerUser,
    maxAgeMs: config.inbox.maxAgeDays * DAY_MS
  })
  if (inbox.newEpochReason === undefined) log.info({ epoch: inbox.epoch }, 'Inbox epoch continues: cursors issued before stay valid')
  else log.info({ epoch: inbox.epoch, why: inbox.newEpochReason }, `Inbox epoch is new (${inbox.newEpochReason}): clients resuming with older cursors get reset`)
  const brokers = config.kafka.brokers
  if (given.bus === undefined && brokers === undefined) throw new Error('KAFKA_BROKERS is not set and no local broker was started')
  try {
    const bus = given.bus ?? await createKafkaBus({
      ...config.kafka,
      brokers: brokers ?? [],
      isKnownUser: (id) => directory.get(id) !== undefined,
      beforeCommit: () => inbox.flush(),
      onDeadLetter: (kind) => metrics.deadLetters.inc({ reason: kind }),
      onLag: (partition, lag) => metrics.consumerLag.set({ partition: String(partition) }, lag),
      onConsumerCrash: (crash) => metrics.consumerCrashes.inc({ restarted_by: crash.restartedBy }),
      onConsumerRestart: () => metrics.consumerRestarts.inc()
    }, log.child({ component: 'kafka' }))
    if (bus.producerStats !== undefined) metrics.producerStats = () => bus.producerStats!()
    return { directory, tokens, hub, inbox, bus, metrics }
  } catch (error) {
    await inbox.close()
    throw error
  }
}

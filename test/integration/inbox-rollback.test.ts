import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Pool } from 'pg'
import t, { type Test } from 'tap'
import { sqliteDriver } from '../../server/inbox/sqlite-driver.js'
import { FeedClient, type Frame } from '../helpers/clients.js'
import { checkInbox, FollowStream, startSharedServices, signInAll, USERS } from '../helpers/feed-checks.js'
import { startGateway, tempDir, type Gateway } from '../helpers/gateway.js'
import { testKafka } from '../helpers/kafka.js'

const PACE_MS = 20
/** Follows before the store's state is kept (what the lagging standby, or the snapshot, has)… */
const BEFORE_SNAPSHOT = 40
/** …and after it: what the rollback loses, though its offsets are committed. */
const AFTER_SNAPSHOT = 40
/** Follows to each user after the restart: more than each lost, so a reused seq reaches past an old cursor. */
const AFTER_RESTART = 20
const BOUND_MS = 60_000

t.setTimeout(240_000)

/** Where a user's feed stood before the rollback: their newest cursor, and every id they had. */
interface Seen { cursor: string, ids: Set<string> }

/** Waits until the group committed every record of `topic` (so the rollback loses committed work). */
async function untilAllCommitted (groupId: string, topic: string): Promise<void> {
  const admin = testKafka().admin()
  await admin.connect()
  try {
    const deadline = Date.now() + BOUND_MS
    for (;;) {
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => [partition, high]))
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
      // A partition no record went to has no committed offset (-1).
      if (committed!.partitions.every(({ partition, offset }) => Math.max(0, Number(offset)) === Number(ends.get(partition)))) return
      if (Date.now() > deadline) throw new Error(`the group did not commit every record of ${topic} within ${BOUND_MS} ms`)
      await delay(200)
    }
  } finally {
    await admin.disconnect()
  }
}

/** Each user's feed as a tab that kept up would have it: its newest cursor and the ids it got. */
async function seenBy (t: Test, url: string, tokens: Map<string, string>, stream: FollowStream): Promise<Map<string, Seen>> {
  const seen = new Map<string, Seen>()
  for (const userId of USERS) {
    const tab = await FeedClient.connect(url, tokens.get(userId)!, { since: '0' })
    t.teardown(() => tab.close())
    const ids = new Set<string>()
    let cursor = ''
    for (;;) {
      const frame = await tab.next()
      if (frame.type === 'notification') {
        ids.add((frame.notification as { id: string }).id)
        cursor = frame.cursor as string
      }
      if (frame.type === 'synced') break
    }
    tab.close()
    t.equal(ids.size, stream.accepted.get(userId)!.length, `user ${userId} had all ${ids.size} of their follows before the rollback`)
    seen.set(userId, { cursor, ids })
  }
  return seen
}

/**
 * Resumes each user's feed with the cursor they had before the rollback: the answer must be a
 * reset (reload the history) or the notifications they lack, never a silent skip.
 */
async function checkResumes (t: Test, url: string, tokens: Map<string, string>, stream: FollowStream, seen: Map<string, Seen>): Promise<void> {
  for (const userId of USERS) {
    const { cursor, ids } = seen.get(userId)!
    const tab = await FeedClient.connect(url, tokens.get(userId)!, { since: cursor })
    t.teardown(() => tab.close())
    const got = new Set(ids)
    let synced: Frame
    for (;;) {
      const frame = await tab.next()
      if (frame.type === 'notification') got.add((frame.notification as { id: string }).id)
      if (frame.type === 'synced') {
        synced = frame
        break
      }
    }
    const missing = stream.accepted.get(userId)!.filter((id) => !got.has(id))
    t.ok(synced.reset === true || missing.length === 0,
      `user ${userId} resuming with ${cursor}: ${synced.reset === true ? 'reset (reload the history)' : `${missing.length} of their follows skipped`}`)
    tab.close()
  }
}

// Regression: the consumer resumed from the group's committed offsets, never
// from the positions stored in the inbox, so what a promoted standby lacked was never applied
// again; and the epoch stayed, so new notifications took the lost ones' seqs: a resume with an old
// cursor skipped them.
t.test('a PostgreSQL inbox rolled back as a lagging standby would be, with the group\'s offsets kept: after a restart every 202 is in the inbox, and an old cursor resumes with a reset or what it lacks', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const { databaseUrl, env } = shared
  const operator = new Pool({ connectionString: databaseUrl, max: 1 })
  t.teardown(() => operator.end())
  const first = [await startGateway(t, { env }), await startGateway(t, { env })]
  const tokens = await signInAll(first[0]!.url)
  const targets = first.map(({ url }) => url)
  const stream = new FollowStream({ targets, tokens, paceMs: PACE_MS })
  stream.start()
  await stream.accepting(BEFORE_SNAPSHOT, BOUND_MS)

  // What a standby that lags holds: the primary's state of a moment ago, rows, feeds and positions alike.
  const snapshot = await operator.connect()
  try {
    await snapshot.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    for (const table of ['notifications', 'feeds', 'consumed']) await snapshot.query(`CREATE TABLE standby_${table} AS SELECT * FROM ${table}`)
    await snapshot.query('COMMIT')
  } finally {
    snapshot.release()
  }
  await stream.accepting(AFTER_SNAPSHOT, BOUND_MS)
  await stream.stop()
  await untilAllCommitted(env.KAFKA_GROUP_ID!, env.KAFKA_TOPIC!)
  const seen = await seenBy(t, first[0]!.url, tokens, stream)
  for (const gateway of first) await gateway.close()

  await operator.query(`BEGIN;
    TRUNCATE notifications, feeds, consumed;
    INSERT INTO notifications SELECT * FROM standby_notifications;
    INSERT INTO feeds SELECT * FROM standby_feeds;
    INSERT INTO consumed SELECT * FROM standby_consumed;
    COMMIT`)
  const { rows } = await operator.query<{ kept: string }>('SELECT count(*) AS kept FROM notifications')
  const lost = stream.acceptedCount - Number(rows[0]!.kept)
  t.ok(lost > 0, `the failover lost ${lost} of ${stream.acceptedCount} notifications, whose offsets the group had committed`)

  await restartAndCheck(t, { env, tokens, stream, targets, seen }, async () => { await checkInbox(t, databaseUrl, stream) })
})

// Regression, the SQLite inbox: a file-system snapshot of DATA_DIR taken while
// the gateway ran holds the inbox and its run marker from one instant, so the run marker cannot
// tell it from a crash: the epoch stayed, and what the snapshot lacked was never applied again.
t.test('a SQLite inbox restored from a snapshot of DATA_DIR (run marker included), with the group\'s offsets kept: after a restart every 202 is in the inbox, and an old cursor resumes with a reset or what it lacks', async (t) => {
  const dataDir = tempDir(t)
  // One secret across the restart: the tokens of before must still sign in.
  const gateway = await startGateway(t, { dataDir, env: { AUTH_SECRET: 'rollback-test-secret-of-thirty-two-chars' } })
  const env = { KAFKA_TOPIC: gateway.config.kafka.topic, KAFKA_DLQ_TOPIC: gateway.config.kafka.dlqTopic, KAFKA_GROUP_ID: gateway.config.kafka.groupId, AUTH_SECRET: gateway.config.auth.secret! }
  const tokens = await signInAll(gateway.url)
  const targets = [gateway.url]
  const stream = new FollowStream({ targets, tokens, paceMs: PACE_MS })
  stream.start()
  await stream.accepting(BEFORE_SNAPSHOT, BOUND_MS)

  // A consistent copy of the database (as an atomic volume snapshot holds it), and the marker beside it.
  const file = join(dataDir, 'inbox.sqlite')
  const snapshotDir = tempDir(t)
  const reader = sqliteDriver().open(file)
  reader.exec(`VACUUM INTO '${join(snapshotDir, 'inbox.sqlite').replaceAll("'", "''")}'`)
  reader.close()
  copyFileSync(`${file}.run`, join(snapshotDir, 'inbox.sqlite.run'))
  await stream.accepting(AFTER_SNAPSHOT, BOUND_MS)
  await stream.stop()
  await untilAllCommitted(env.KAFKA_GROUP_ID, env.KAFKA_TOPIC)
  const seen = await seenBy(t, gateway.url, tokens, stream)
  await gateway.close()

  for (const leftover of [`${file}-wal`, `${file}-shm`]) rmSync(leftover, { force: true })
  copyFileSync(join(snapshotDir, 'inbox.sqlite'), file)
  writeFileSync(`${file}.run`, readFileSync(join(snapshotDir, 'inbox.sqlite.run')))

  await restartAndCheck(t, { env, tokens, stream, targets, seen, dataDir }, async (restarted) => {
    for (const userId of USERS) {
      const stored = (await restarted.services.inbox.after(userId, 0, 1000))
      const expected = stream.accepted.get(userId)!
      t.same(stored.map(({ seq }) => seq), expected.map((_, i) => i + 1), `inbox of user ${userId}: seq 1–${expected.length}, contiguous`)
      t.same(stored.map(({ notification }) => notification.id).sort(), [...expected].sort(), `inbox of user ${userId}: every 202 once, and nothing else`)
    }
  })
})

/**
 * Starts the gateways again on the rolled-back store and the group's kept offsets, sends more
 * follows to everyone, waits until the group consumed them, then runs `checkInbox` and resumes
 * every user's feed with the cursor they had before the rollback.
 */
async function restartAndCheck (
  t: Test,
  run: { env: Record<string, string>, tokens: Map<string, string>, stream: FollowStream, targets: string[], seen: Map<string, Seen>, dataDir?: string },
  checkInboxOf: (gateway: Gateway) => Promise<void>
): Promise<void> {
  const { env, tokens, stream, targets, seen } = run
  const startedAt = Date.now()
  const gateways = run.dataDir === undefined
    ? [await startGateway(t, { env }), await startGateway(t, { env })]
    : [await startGateway(t, { env, dataDir: run.dataDir })]
  targets.splice(0, targets.length, ...gateways.map(({ url }) => url))
  // How long the refill takes, for the record (the checks below are what must hold).
  const before = stream.acceptedCount
  const stored = async (): Promise<number> => (await Promise.all(USERS.map(async (userId) => (await gateways[0]!.services.inbox.feed(userId)).newestSeq))).reduce((sum, seq) => sum + seq, 0)
  while (await stored() < before && Date.now() < startedAt + BOUND_MS) await delay(100)
  t.comment(await stored() >= before
    ? `measured: the inbox held all ${before} notifications again ${Date.now() - startedAt} ms after the gateways started`
    : `the inbox held ${await stored()} of ${before} notifications ${BOUND_MS} ms after the gateways started`)
  for (let i = 0; i < AFTER_RESTART; i++) {
    for (const [index, followee] of USERS.entries()) await stream.send(`after-restart-${i}-${followee}`, USERS[(index + 1) % USERS.length]!, followee)
  }
  await untilAllCommitted(env.KAFKA_GROUP_ID!, env.KAFKA_TOPIC!)
  await checkInboxOf(gateways[0]!)
  await checkResumes(t, gateways[0]!.url, tokens, stream, seen)
}

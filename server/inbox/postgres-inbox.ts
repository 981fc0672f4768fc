import { DatabaseError, type Pool, type PoolClient } from 'pg'
import type { ConsumedRecord, PartitionPosition } from '../kafka/types.js'
import { boundedProbe, type Unready } from '../lifecycle.js'
import type { Logger } from '../logger.js'
import type { Notification } from '../notification.js'
import { decodeRewoundAt, describeBehind, encodeRewoundAt, newEpoch, newlyBehind } from './epoch.js'
import { createPool, inTransaction, withConnection } from './postgres-session.js'
import { ReadLimit } from './read-limit.js'
import { InboxRefusedError, InboxRewoundError, InboxUnavailableError, type AppendedNotification, type AppendResult, type FeedState, type HistoryPage, type Inbox, type Reconciliation, type RetentionPolicy, type StoredNotification } from './types.js'

const PRUNE_CHUNK = 2000
/** How many users over the cap one prune chunk looks at. */
const PRUNE_USERS = 100
const SCHEMA_VERSION = 2
/** What takes a store of each older version to the next (run under the schema lock). */
const MIGRATIONS: Readonly<Record<number, string>> = {
  // Version 2 counts each feed's read-state changes; a store from before has made none that count.
  1: 'ALTER TABLE feeds ADD COLUMN rev bigint NOT NULL DEFAULT 0'
}
/** How long the readiness probe waits for `SELECT 1`. */
const PROBE_TIMEOUT_MS = 1500
/**
 * SQLSTATEs that say the records are wrong for the store, and will be again: data exceptions
 * (class 22: a value out of range) and integrity constraint violations (class 23).
 */
const REFUSED_SQLSTATE = /^2[23]/
/** The consumer's own connections: an append, the positions check at an assignment, the readiness probe. */
const CONSUMER_POOL_SIZE = 3
export const DEFAULT_POOL_SIZE = 10
/** History and catch-up reads that may wait for a connection; more are refused at once (503, close 1013). */
const MAX_QUEUED_READS = 1000
/** A read that waited this long for a connection is refused: the client retries later, as after a refusal. */
const MAX_READ_WAIT_MS = 2000

export interface PostgresInboxOptions {
  /** Connections for the API: history, catch-up, read marks and retention (the consumer has its own). */
  poolSize?: number
  log?: Logger
  /** Told about each history or catch-up read refused because too many were waiting (for metrics). */
  onReadRefused?: () => void
}

/**
 * Advisory lock keys, as pg_advisory_lock(namespace, key). Advisory locks are per database, so
 * only gateways sharing the inbox's database contend for them.
 */
export const ADVISORY_LOCK = {
  namespace: 0x6b6e6f74, // "knot"
  schema: 1,
  prune: 2
} as const

// `stored` counts the feed's rows, so that retention finds users over the cap without a scan of
// every notification, whichever gateway appended them.
const SCHEMA = `
CREATE TABLE notifications (
  user_id text NOT NULL,
  seq bigint NOT NULL,
  id text NOT NULL UNIQUE,
  body text NOT NULL,
  created_at timestamptz NOT NULL,
  read boolean NOT NULL DEFAULT false,
  PRIMARY KEY (user_id, seq)
);
CREATE INDEX notifications_by_age ON notifications (created_at);
CREATE TABLE feeds (
  user_id text PRIMARY KEY,
  newest_seq bigint NOT NULL,
  unread integer NOT NULL,
  stored integer NOT NULL,
  rev bigint NOT NULL DEFAULT 0
);
CREATE TABLE consumed (
  topic text NOT NULL,
  partition integer NOT NULL,
  next_offset bigint NOT NULL,
  PRIMARY KEY (topic, partition)
);
`

/** Rows in the order every transaction locks them (user ids and topics are ASCII: JS and "C" agree). */
const C_ORDER = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

interface Row { seq: string, body: string, read: boolean }
/** A `feeds` row as read (bigints come as strings). */
interface FeedRow { newest_seq: string, unread: number, rev: string }
interface Position { topic: string, partition: number, next: bigint, stored: bigint }

/**
 * The shared inbox for several gateways: the same tables as the SQLite inbox in one PostgreSQL
 * database (give it a database of its own). Each user's feed is numbered 1, 2, 3… in `feeds`, with
 * its unread count, in the same transaction as the rows; `consumed` holds, per Kafka partition, the
 * offset after the last record applied, in that transaction too, so a record is applied once even
 * when two gateways briefly consume the same partition during a rebalance. Every writer locks in
 * one order: the batch's `consumed` rows, then its `feeds` rows (by user id), then notifications.
 *
 * The epoch is created with the schema and kept in `meta`: commits are durable
 * (synchronous_commit on), so neither a gateway's nor PostgreSQL's restart can lose an
 * acknowledged write. A failover to a standby that lagged, or a restore, can: `reconcile` finds it
 * (positions behind the group's committed offsets, another server or timeline) and begins a new
 * epoch, and an append that finds a position behind what this process stored refuses to go on.
 */
export class PostgresInbox implements Inbox {
  #epoch: string
  /** Why this open began a new epoch; undefined when it continues the stored one. */
  readonly newEpochReason: string | undefined
  /**
   * The consumer's appends and the readiness probe, apart from the API's connections: a flood of
   * history reads or a reconnect storm must not make the consumer wait for a connection (and hold
   * its batches as if PostgreSQL were down), nor /readyz say so.
   */
  readonly #consumerPool: Pool
  /** History, catch-up, read marks, retention. */
  readonly #apiPool: Pool
  /** History and catch-up reads: fewer at once than the API's connections, so read marks always find one. */
  readonly #reads: ReadLimit
  readonly #retention: RetentionPolicy
  /** The position this process last stored in each partition (by partitionKey): the store can only be ahead of it, unless it lost writes. */
  readonly #applied = new Map<string, bigint>()
  #closed = false
  /** A real `SELECT 1`, bounded in time. */
  readonly #probe = boundedProbe(
    () => withConnection(this.#consumerPool, (client) => client.query('SELECT 1')).then((): Unready[] => [], (error: Error): Unready[] => [{ reason: 'inbox (PostgreSQL) unreachable', detail: error.message }]),
    PROBE_TIMEOUT_MS,
    (): Unready[] => [{ reason: `inbox (PostgreSQL) did not answer within ${PROBE_TIMEOUT_MS} ms` }]
  )

  private constructor (pools: { consumer: Pool, api: Pool }, retention: RetentionPolicy, schema: { epoch: string, newEpochReason: string | undefined }, options: PostgresInboxOptions) {
    this.#consumerPool = pools.consumer
    this.#apiPool = pools.api
    this.#retention = retention
    this.#epoch = schema.epoch
    this.newEpochReason = schema.newEpochReason
    const concurrency = Math.max(1, (options.poolSize ?? DEFAULT_POOL_SIZE) - 1)
    this.#reads = new ReadLimit({
      concurrency,
      maxQueued: MAX_QUEUED_READS,
      maxWaitMs: MAX_READ_WAIT_MS,
      refuse: (why) => {
        options.onReadRefused?.()
        return new InboxUnavailableError(`inbox (PostgreSQL) busy: ${why}`)
      }
    })
  }

  /** Connects, then creates or migrates the schema, one gateway at a time. */
  static async open (url: string, retention: RetentionPolicy, options: PostgresInboxOptions = {}): Promise<PostgresInbox> {
    const { log } = options
    const pools = {
      consumer: createPool(url, { role: 'consumer', max: CONSUMER_POOL_SIZE, log }),
      api: createPool(url, { role: 'api', max: options.poolSize ?? DEFAULT_POOL_SIZE, log })
    }
    try {
      const schema = await inTransaction(pools.consumer, prepareSchema)
      return new PostgresInbox(pools, retention, schema, options)
    } catch (error) {
      await Promise.all([pools.consumer.end(), pools.api.end()])
      throw error
    }
  }

  get epoch (): string {
    return this.#epoch
  }

  async append (records: ConsumedRecord[], positions: PartitionPosition[] = []): Promise<AppendResult> {
    if (records.length === 0 && positions.length === 0) return { appended: [], unread: new Map() }
    const stored = new Map<string, bigint>()
    try {
      const result = await inTransaction(this.#consumerPool, (client) => appendBatch(client, records, positions, this.#applied, stored))
      for (const [partition, next] of stored) this.#applied.set(partition, next)
      return result
    } catch (error) {
      if (!(error instanceof DatabaseError) || !REFUSED_SQLSTATE.test(error.code ?? '')) throw error
      throw new InboxRefusedError(`the inbox (PostgreSQL) refused it: ${error.code} ${error.message}`, { cause: error })
    }
  }

  async reconcile (topic: string, committed: ReadonlyMap<number, bigint>): Promise<Reconciliation> {
    const server = await withConnection(this.#consumerPool, serverIdentity)
    const { epoch, stored, why } = await inTransaction(this.#consumerPool, (client) => reconcilePositions(client, topic, committed, server))
    // The positions as they are now are the truth the consumer goes on from.
    for (const [partition, next] of stored) this.#applied.set(partitionKey(topic, partition), next)
    if (epoch === this.#epoch) return { stored }
    this.#epoch = epoch
    return { stored, epochChanged: why ?? 'another gateway began a new epoch' }
  }

  async feed (userId: string): Promise<FeedState> {
    const { rows } = await this.#read((client) => client.query<FeedRow>('SELECT newest_seq, unread, rev FROM feeds WHERE user_id = $1', [userId]))
    return toFeedState(rows[0])
  }

  async feeds (userIds: readonly string[]): Promise<Map<string, FeedState>> {
    const { rows } = await this.#read((client) => client.query<FeedRow & { user_id: string }>(
      'SELECT user_id, newest_seq, unread, rev FROM feeds WHERE user_id = ANY($1::text[])', [userIds]))
    const found = new Map(rows.map((row) => [row.user_id, row]))
    return new Map(userIds.map((userId) => [userId, toFeedState(found.get(userId))]))
  }

  async history (userId: string, limit: number, before?: number): Promise<HistoryPage> {
    const { rows } = await this.#read((client) => before === undefined
      ? client.query<Row>('SELECT seq, body, read FROM notifications WHERE user_id = $1 ORDER BY seq DESC LIMIT $2', [userId, limit + 1])
      : client.query<Row>('SELECT seq, body, read FROM notifications WHERE user_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3', [userId, before, limit + 1]))
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(toStored)
    return { items, nextBefore: more ? items[items.length - 1]!.seq : null }
  }

  async after (userId: string, after: number, limit: number): Promise<StoredNotification[]> {
    const { rows } = await this.#read((client) => client.query<Row>(
      'SELECT seq, body, read FROM notifications WHERE user_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3', [userId, after, limit]))
    return rows.map(toStored)
  }

  async unread (userId: string): Promise<number> {
    return (await this.feed(userId)).unread
  }

  async markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<FeedState> {
    return await inTransaction(this.#apiPool, async (client) => {
      const { rows: [feed] } = await client.query<FeedRow>('SELECT newest_seq, unread, rev FROM feeds WHERE user_id = $1 FOR UPDATE', [userId])
      if (feed === undefined) return toFeedState(undefined)
      const { rowCount } = 'upTo' in selection
        ? await client.query('UPDATE notifications SET read = true WHERE user_id = $1 AND seq <= $2 AND NOT read', [userId, selection.upTo])
        : await client.query('UPDATE notifications SET read = true WHERE user_id = $1 AND id = ANY($2::text[]) AND NOT read', [userId, selection.ids])
      if (rowCount === null || rowCount === 0) return toFeedState(feed)
      const { rows: [after] } = await client.query<FeedRow>(
        'UPDATE feeds SET unread = unread - $2, rev = rev + 1 WHERE user_id = $1 RETURNING newest_seq, unread, rev', [userId, rowCount])
      return toFeedState(after)
    })
  }

  /** Nothing to do: a PostgreSQL commit is durable when it returns (synchronous_commit on). */
  async flush (): Promise<void> {}

  /** Returns 0 without waiting while another gateway prunes. */
  async prune (now = Date.now()): Promise<number> {
    return await inTransaction(this.#apiPool, (client) => pruneChunk(client, this.#retention, now))
  }

  async unreadyReasons (): Promise<Unready[]> {
    return await this.#probe()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([this.#consumerPool.end(), this.#apiPool.end()])
  }

  /** A history or catch-up read: through the read limit, on the API's connections. */
  async #read<T> (query: (client: PoolClient) => Promise<T>): Promise<T> {
    return await this.#reads.run(() => withConnection(this.#apiPool, query))
  }
}

async function prepareSchema (client: PoolClient): Promise<{ epoch: string, newEpochReason: string | undefined }> {
  // Held to the end of this transaction: gateways starting at once create the schema once, and
  // each of the others then sees it, committed.
  await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.schema])
  const { rows: [present] } = await client.query<{ meta: string | null }>("SELECT to_regclass('meta') AS meta")
  const created = present?.meta === null
  if (created) {
    await client.query('CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)')
    await client.query(SCHEMA)
    await client.query("INSERT INTO meta (key, value) VALUES ('schema_version', $1)", [String(SCHEMA_VERSION)])
  } else {
    const version = await readMeta(client, 'schema_version')
    if (version === undefined) throw new Error('The database has a table `meta` that is not the inbox\'s: give the inbox a database of its own')
    if (!(Number(version) <= SCHEMA_VERSION)) {
      throw new Error(`The inbox database has schema version ${version}, this gateway knows only versions up to ${SCHEMA_VERSION}: run a gateway of the same version as the others`)
    }
    if (Number(version) < SCHEMA_VERSION) {
      for (let from = Number(version); from < SCHEMA_VERSION; from++) await client.query(MIGRATIONS[from]!)
      await client.query("UPDATE meta SET value = $1 WHERE key = 'schema_version'", [String(SCHEMA_VERSION)])
    }
  }
  const stored = await readMeta(client, 'epoch')
  if (stored !== undefined) return { epoch: stored, newEpochReason: undefined }
  const epoch = newEpoch()
  await client.query("INSERT INTO meta (key, value) VALUES ('epoch', $1)", [epoch])
  return { epoch, newEpochReason: created ? 'a new store' : 'the epoch was reset (a restore)' }
}

async function readMeta (client: PoolClient, key: string): Promise<string | undefined> {
  const { rows } = await client.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])
  return rows[0]?.value
}

async function writeMeta (client: PoolClient, key: string, value: string): Promise<void> {
  await client.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value])
}

/**
 * The database server this is, as `<system identifier>/<timeline>`: a promoted standby has the
 * same system identifier on a new timeline, a point-in-time recovery too; undefined where the
 * server does not let this role read them.
 */
async function serverIdentity (client: PoolClient): Promise<string | undefined> {
  try {
    const { rows: [row] } = await client.query<{ server: string }>(
      "SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS server")
    return row?.server
  } catch {
    return undefined
  }
}

/**
 * Compares the stored positions of `topic` with the group's committed offsets, and the server
 * with the one of the last check; begins a new epoch when the store lost writes (see
 * Inbox.reconcile). The epoch's row is locked first: gateways checking at once begin one epoch.
 */
async function reconcilePositions (client: PoolClient, topic: string, committed: ReadonlyMap<number, bigint>, server: string | undefined): Promise<{ epoch: string, stored: Map<number, bigint>, why: string | undefined }> {
  const { rows: [current] } = await client.query<{ value: string }>("SELECT value FROM meta WHERE key = 'epoch' FOR UPDATE")
  const { rows } = await client.query<{ partition: number, next_offset: string }>('SELECT partition, next_offset FROM consumed WHERE topic = $1', [topic])
  const stored = new Map<number, bigint>([...committed.keys()].map((partition) => [partition, 0n]))
  for (const { partition, next_offset: next } of rows) stored.set(partition, BigInt(next))
  const rewoundKey = `rewound_at:${topic}`
  const rewoundAt = decodeRewoundAt(await readMeta(client, rewoundKey))
  const behind = newlyBehind(committed, stored, rewoundAt)
  const knownServer = await readMeta(client, 'server')
  const why: string[] = []
  if (behind.length > 0) why.push(describeBehind(behind))
  if (server !== undefined && knownServer !== undefined && server !== knownServer) {
    why.push(`the database server is not the one of before (system identifier/timeline ${knownServer} → ${server}): a failover or a point-in-time recovery may have lost writes`)
  }
  if (server !== undefined && server !== knownServer) await writeMeta(client, 'server', server)
  if (why.length === 0) return { epoch: current!.value, stored, why: undefined }
  const epoch = newEpoch()
  await writeMeta(client, 'epoch', epoch)
  for (const { partition, committed: offset } of behind) rewoundAt.set(partition, offset)
  await writeMeta(client, rewoundKey, encodeRewoundAt(rewoundAt))
  return { epoch, stored, why: why.join('; ') }
}

/**
 * Appends a batch (see Inbox.append). `applied` holds what this process stored before in each
 * partition: a stored position behind it means the store lost those writes, and nothing must be
 * stored over them. `stored` gets the positions this batch leaves, for `applied` once committed.
 */
async function appendBatch (client: PoolClient, records: ConsumedRecord[], ends: PartitionPosition[], applied: ReadonlyMap<string, bigint>, stored: Map<string, bigint>): Promise<AppendResult> {
  const positions = await lockPositions(client, [...records, ...ends])
  for (const [key, position] of positions) {
    const mine = applied.get(key)
    if (mine !== undefined && position.stored < mine) {
      throw new InboxRewoundError(`the inbox (PostgreSQL) is behind what this gateway stored in it (partition ${position.partition} of ${position.topic}: ` +
        `${position.stored} < ${mine}): it lost acknowledged writes (a failover to a standby that lagged?)`)
    }
  }
  const fresh: Array<{ notification: Notification, json: string }> = []
  const seen = new Set<string>()
  for (const { notification, json, topic, partition, offset } of records) {
    const position = positions.get(partitionKey(topic, partition))!
    const at = BigInt(offset)
    if (at < position.next) continue // applied before: its row may be gone, but it must not come back
    position.next = at + 1n
    if (seen.has(notification.id)) continue // the same follow twice in one batch
    seen.add(notification.id)
    fresh.push({ notification, json })
  }
  for (const { topic, partition, nextOffset } of ends) {
    const position = positions.get(partitionKey(topic, partition))!
    if (BigInt(nextOffset) > position.next) position.next = BigInt(nextOffset)
  }
  for (const [key, { next }] of positions) stored.set(key, next)

  const appended: AppendedNotification[] = []
  const unread = new Map<string, number>()
  if (fresh.length > 0) {
    const feeds = await lockFeeds(client, [...new Set(fresh.map(({ notification }) => notification.userId))])
    const { rows: known } = await client.query<{ id: string }>('SELECT id FROM notifications WHERE id = ANY($1::text[])', [fresh.map(({ notification }) => notification.id)])
    const stored = new Set(known.map(({ id }) => id))
    for (const { notification, json } of fresh) {
      if (stored.has(notification.id)) continue // stored already (the same follow produced twice)
      const feed = feeds.get(notification.userId)!
      feed.newestSeq++
      appended.push({ seq: feed.newestSeq, notification, json, unread: 0, rev: feed.rev })
    }
    if (appended.length > 0) {
      const added = new Map<string, number>()
      for (const { notification } of appended) added.set(notification.userId, (added.get(notification.userId) ?? 0) + 1)
      // One statement, one round trip: the rows, the stored positions and the counters.
      const moved = movedPositions(positions)
      const { rows } = await client.query<{ user_id: string, unread: number }>(`
        WITH inserted AS (
          INSERT INTO notifications (user_id, seq, id, body, created_at)
          SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
        ), positions AS (
          ${updatePositions(9)}
        )
        UPDATE feeds f SET newest_seq = u.newest_seq, unread = f.unread + u.added, stored = f.stored + u.added
        FROM unnest($6::text[], $7::bigint[], $8::int[]) AS u (user_id, newest_seq, added)
        WHERE f.user_id = u.user_id
        RETURNING f.user_id, f.unread`, [
        appended.map(({ notification }) => notification.userId),
        appended.map(({ seq }) => seq),
        appended.map(({ notification }) => notification.id),
        appended.map(({ json }) => json),
        appended.map(({ notification }) => notification.createdAt),
        [...added.keys()], [...added.keys()].map((userId) => feeds.get(userId)!.newestSeq), [...added.values()],
        ...positionColumns(moved)
      ])
      const after = new Map(rows.map(({ user_id: userId, unread }) => [userId, unread]))
      for (const { notification } of appended) unread.set(notification.userId, after.get(notification.userId)!)
      // Each row's own count: the batch's last row of a user has the count after the batch.
      const counting = new Map(unread)
      for (let i = appended.length - 1; i >= 0; i--) {
        const row = appended[i]!
        row.unread = counting.get(row.notification.userId)!
        counting.set(row.notification.userId, row.unread - 1)
      }
      return { appended, unread }
    }
  }

  // Nothing new to store (every record applied before, or a repeat): the positions still move on.
  const moved = movedPositions(positions)
  if (moved.length > 0) await client.query(updatePositions(1), positionColumns(moved))
  return { appended, unread }
}

/** Sets each partition's stored position, from the parameters `$n`, `$n+1`, `$n+2` (positionColumns). */
function updatePositions (n: number): string {
  return `UPDATE consumed c SET next_offset = p.next_offset
    FROM unnest($${n}::text[], $${n + 1}::int[], $${n + 2}::bigint[]) AS p (topic, partition, next_offset)
    WHERE c.topic = p.topic AND c.partition = p.partition`
}

function movedPositions (positions: Map<string, Position>): Position[] {
  return [...positions.values()].filter(({ next, stored }) => next !== stored)
}

function positionColumns (moved: Position[]): [string[], number[], string[]] {
  return [moved.map(({ topic }) => topic), moved.map(({ partition }) => partition), moved.map(({ next }) => next.toString())]
}

function partitionKey (topic: string, partition: number): string {
  return `${partition}\u0000${topic}`
}

/**
 * Locks the stored position of every partition of the batch, creating the missing ones: another
 * gateway appending the same partition (a rebalance in progress) waits here until this one commits,
 * then skips what this one applied.
 */
async function lockPositions (client: PoolClient, records: Array<{ topic: string, partition: number }>): Promise<Map<string, Position>> {
  const partitions = new Map<string, { topic: string, partition: number }>()
  for (const { topic, partition } of records) partitions.set(partitionKey(topic, partition), { topic, partition })
  const sorted = [...partitions.values()].sort((a, b) => C_ORDER(a.topic, b.topic) || a.partition - b.partition)
  const topics = sorted.map(({ topic }) => topic)
  const numbers = sorted.map(({ partition }) => partition)
  // The no-op update on conflict locks the row, as FOR UPDATE would, and returns its newest
  // committed position (after waiting for another gateway's transaction): one round trip.
  const { rows } = await client.query<{ topic: string, partition: number, next_offset: string }>(`
    INSERT INTO consumed (topic, partition, next_offset)
    SELECT topic, partition, 0 FROM unnest($1::text[], $2::int[]) AS p (topic, partition)
    ON CONFLICT (topic, partition) DO UPDATE SET next_offset = consumed.next_offset
    RETURNING topic, partition, next_offset`, [topics, numbers])
  return new Map(rows.map(({ topic, partition, next_offset: next }) =>
    [partitionKey(topic, partition), { topic, partition, next: BigInt(next), stored: BigInt(next) }]))
}

/** Locks (creating the missing ones) the feeds of `userIds`; returns each one's newest seq and rev. */
async function lockFeeds (client: PoolClient, userIds: string[]): Promise<Map<string, { newestSeq: number, rev: number }>> {
  const sorted = [...userIds].sort(C_ORDER)
  const { rows } = await client.query<{ user_id: string, newest_seq: string, rev: string }>(`
    INSERT INTO feeds (user_id, newest_seq, unread, stored)
    SELECT user_id, 0, 0, 0 FROM unnest($1::text[]) AS u (user_id)
    ON CONFLICT (user_id) DO UPDATE SET newest_seq = feeds.newest_seq
    RETURNING user_id, newest_seq, rev`, [sorted])
  return new Map(rows.map(({ user_id: userId, newest_seq: seq, rev }) => [userId, { newestSeq: Number(seq), rev: Number(rev) }]))
}

async function pruneChunk (client: PoolClient, retention: RetentionPolicy, now: number): Promise<number> {
  const { rows: [lock] } = await client.query<{ locked: boolean }>(
    'SELECT pg_try_advisory_xact_lock($1, $2) AS locked', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.prune])
  if (lock?.locked !== true) return 0 // another gateway is pruning
  const cutoff = new Date(now - retention.maxAgeMs)
  const { rows: expired } = await client.query<{ user_id: string, seq: string }>(
    'SELECT user_id, seq FROM notifications WHERE created_at < $1 ORDER BY created_at LIMIT $2', [cutoff, PRUNE_CHUNK])
  const { rows: overCap } = expired.length < PRUNE_CHUNK
    ? await client.query<{ user_id: string }>('SELECT user_id FROM feeds WHERE stored > $1 LIMIT $2', [retention.maxPerUser, PRUNE_USERS])
    : { rows: [] }
  const users = [...new Set([...expired, ...overCap].map(({ user_id: userId }) => userId))].sort(C_ORDER)
  if (users.length === 0) return 0
  // Found without locks; from here on no other writer can touch these feeds, and each delete
  // checks its condition again.
  await client.query('SELECT 1 FROM feeds WHERE user_id = ANY($1::text[]) ORDER BY user_id COLLATE "C" FOR UPDATE', [users])
  const removed: Array<{ user_id: string, read: boolean }> = []
  if (expired.length > 0) {
    const { rows } = await client.query<{ user_id: string, read: boolean }>(`
      DELETE FROM notifications n USING unnest($1::text[], $2::bigint[]) AS d (user_id, seq)
      WHERE n.user_id = d.user_id AND n.seq = d.seq AND n.created_at < $3
      RETURNING n.user_id, n.read`, [expired.map(({ user_id: userId }) => userId), expired.map(({ seq }) => seq), cutoff])
    removed.push(...rows)
  }
  if (overCap.length > 0 && removed.length < PRUNE_CHUNK) {
    const { rows } = await client.query<{ user_id: string, read: boolean }>(`
      WITH cut AS (
        SELECT u.user_id,
          (SELECT x.seq FROM notifications x WHERE x.user_id = u.user_id ORDER BY x.seq DESC OFFSET $2 LIMIT 1) AS newest_dropped
        FROM unnest($1::text[]) AS u (user_id)
      ), doomed AS (
        SELECT d.user_id, d.seq FROM cut CROSS JOIN LATERAL (
          SELECT x.user_id, x.seq FROM notifications x WHERE x.user_id = cut.user_id AND x.seq <= cut.newest_dropped ORDER BY x.seq LIMIT $3
        ) AS d
        LIMIT $3
      )
      DELETE FROM notifications n USING doomed
      WHERE n.user_id = doomed.user_id AND n.seq = doomed.seq
      RETURNING n.user_id, n.read`, [overCap.map(({ user_id: userId }) => userId), retention.maxPerUser, PRUNE_CHUNK - removed.length])
    removed.push(...rows)
  }
  if (removed.length === 0) return 0
  const gone = new Map<string, { rows: number, unread: number }>()
  for (const { user_id: userId, read } of removed) {
    const count = gone.get(userId) ?? { rows: 0, unread: 0 }
    count.rows++
    if (!read) count.unread++
    gone.set(userId, count)
  }
  await client.query(`
    UPDATE feeds f SET stored = f.stored - d.rows, unread = f.unread - d.unread
    FROM unnest($1::text[], $2::int[], $3::int[]) AS d (user_id, rows, unread)
    WHERE f.user_id = d.user_id`, [[...gone.keys()], [...gone.values()].map(({ rows }) => rows), [...gone.values()].map(({ unread }) => unread)])
  return removed.length
}

function toFeedState (row: FeedRow | undefined): FeedState {
  return row === undefined ? { newestSeq: 0, unread: 0, rev: 0 } : { newestSeq: Number(row.newest_seq), unread: row.unread, rev: Number(row.rev) }
}

function toStored (row: Row): StoredNotification {
  return { seq: Number(row.seq), notification: JSON.parse(row.body) as Notification, read: row.read }
}

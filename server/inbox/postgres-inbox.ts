import { DatabaseError, type Pool, type PoolClient } from 'pg'
import type { ConsumedRecord, PartitionPosition } from '../kafka/types.js'
import { boundedProbe, type Unready } from '../lifecycle.js'
import type { Logger } from '../logger.js'
import type { Notification } from '../notification.js'
import { decodeRewoundAt, describeBehind, encodeRewoundAt, newEpoch, newlyBehind } from './epoch.js'
import { createPool, inTransaction, withConnection } from './postgres-session.js'
import { ReadLimit } from './read-limit.js'
import { groupedItem, groupKeyOf, isMuted, joinsGroup, loggedChange, parseMuted, withinFeed, withActor } from './feed-rules.js'
import { DEFAULT_GROUP_WINDOW_MS, InboxRefusedError, InboxRewoundError, InboxUnavailableError, type AppendedNotification, type AppendResult, type FeedSnapshot, type FeedState, type GroupedPage, type HistoryPage, type HistoryView, type Inbox, type LoggedChange, type Reconciliation, type RetentionPolicy, type StateLog, type StateRequest, type StateResult, type StoredNotification } from './types.js'
import type { GroupSummary, Muted } from '../state-change.js'

const PRUNE_CHUNK = 2000
/** How many users over the cap one prune chunk looks at. */
const PRUNE_USERS = 100
const SCHEMA_VERSION = 4

/**
 * Version 3's tables, as in the SQLite inbox: each user's groups as they stand (an open one takes
 * notifications of its type and key within the window; archiving, deleting or pruning a member
 * closes it), who is in a group, the state log for catch-up, and mute lists.
 */
const V3_TABLES = `
CREATE TABLE groups (
  user_id text NOT NULL,
  id text NOT NULL,
  type text NOT NULL,
  key text NOT NULL,
  first_seq bigint NOT NULL,
  started_at timestamptz NOT NULL,
  count integer NOT NULL,
  actor_count integer NOT NULL,
  actors text NOT NULL,
  open boolean NOT NULL DEFAULT true,
  PRIMARY KEY (user_id, id)
);
CREATE INDEX groups_by_key ON groups (user_id, type, key, first_seq);
CREATE INDEX groups_by_age ON groups (started_at);
CREATE TABLE group_actors (
  user_id text NOT NULL,
  group_id text NOT NULL,
  actor_id text NOT NULL,
  PRIMARY KEY (user_id, group_id, actor_id)
);
CREATE TABLE state_changes (
  user_id text NOT NULL,
  rev bigint NOT NULL,
  seq bigint NOT NULL,
  at timestamptz NOT NULL,
  change text NOT NULL,
  unread integer NOT NULL,
  unseen integer NOT NULL,
  PRIMARY KEY (user_id, rev)
);
CREATE INDEX state_changes_by_age ON state_changes (at);
CREATE TABLE preferences (
  user_id text PRIMARY KEY,
  muted text NOT NULL
);
`

/**
 * Version 4: a user's unread rows, and the rows in the inbox (not archived, not deleted), so that a
 * mark-all-read or a clear-all visits only the rows it changes, and the unseen count only the index.
 */
const V4_INDEXES = `
CREATE INDEX notifications_unread ON notifications (user_id, seq) WHERE NOT read AND NOT deleted;
CREATE INDEX notifications_in_inbox ON notifications (user_id, seq) WHERE NOT archived AND NOT deleted;
`

/** What takes a store of each older version to the next (run under the schema lock). */
const MIGRATIONS: Readonly<Record<number, string>> = {
  // Version 2 counts each feed's read-state changes; a store from before has made none that count.
  1: 'ALTER TABLE feeds ADD COLUMN rev bigint NOT NULL DEFAULT 0',
  // Version 3: archive, delete, groups, the seen mark, the state log, mute lists. A store from
  // before archived and deleted nothing, and each of its notifications is a group of its own.
  2: `ALTER TABLE notifications ADD COLUMN archived boolean NOT NULL DEFAULT false,
        ADD COLUMN deleted boolean NOT NULL DEFAULT false, ADD COLUMN group_id text;
      ALTER TABLE feeds ADD COLUMN seen_seq bigint NOT NULL DEFAULT 0, ADD COLUMN state_floor bigint NOT NULL DEFAULT 0;
      ${V3_TABLES}`,
  // Version 4: the indexes a state change "up to a seq" and the unseen count read.
  3: V4_INDEXES
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
  /** GROUP_WINDOW_MS: DEFAULT_GROUP_WINDOW_MS when not given. */
  groupWindowMs?: number
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
  archived boolean NOT NULL DEFAULT false,
  deleted boolean NOT NULL DEFAULT false,
  group_id text,
  PRIMARY KEY (user_id, seq)
);
CREATE INDEX notifications_by_age ON notifications (created_at);
${V4_INDEXES}
CREATE TABLE feeds (
  user_id text PRIMARY KEY,
  newest_seq bigint NOT NULL,
  unread integer NOT NULL,
  stored integer NOT NULL,
  rev bigint NOT NULL DEFAULT 0,
  seen_seq bigint NOT NULL DEFAULT 0,
  state_floor bigint NOT NULL DEFAULT 0
);
CREATE TABLE consumed (
  topic text NOT NULL,
  partition integer NOT NULL,
  next_offset bigint NOT NULL,
  PRIMARY KEY (topic, partition)
);
${V3_TABLES}`

/** Rows in the order every transaction locks them (user ids and topics are ASCII: JS and "C" agree). */
const C_ORDER = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

interface Row { seq: string, body: string, read: boolean, archived: boolean, group_id: string | null, id: string }
const ROW = 'seq, body, read, archived, group_id, id'
/** The state log's row as read. */
interface ChangeRow { rev: string, seq: string, change: string, unread: number, unseen: number }
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
  readonly #groupWindowMs: number
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
    this.#groupWindowMs = options.groupWindowMs ?? DEFAULT_GROUP_WINDOW_MS
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
      const result = await inTransaction(this.#consumerPool, (client) => appendBatch(client, records, positions, { applied: this.#applied, stored, groupWindowMs: this.#groupWindowMs }))
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

  async snapshot (userId: string): Promise<FeedSnapshot> {
    const { rows } = await this.#read((client) => client.query<FeedRow & { unseen: number }>(`
      SELECT newest_seq, unread, rev, (SELECT count(*)::int FROM notifications n
        WHERE n.user_id = f.user_id AND n.seq > f.seen_seq AND NOT n.archived AND NOT n.deleted) AS unseen
      FROM feeds f WHERE user_id = $1`, [userId]))
    return { ...toFeedState(rows[0]), unseen: rows[0]?.unseen ?? 0 }
  }

  async history (userId: string, limit: number, before = Number.MAX_SAFE_INTEGER, view: HistoryView = { archived: false }): Promise<HistoryPage> {
    const { rows } = await this.#read((client) => client.query<Row>(
      `SELECT ${ROW} FROM notifications WHERE user_id = $1 AND seq < $2 AND archived = $3 AND NOT deleted ORDER BY seq DESC LIMIT $4`, [userId, before, view.archived, limit + 1]))
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(toStored)
    return { items, nextBefore: more ? items[items.length - 1]!.seq : null }
  }

  async grouped (userId: string, limit: number, before = Number.MAX_SAFE_INTEGER, view: HistoryView): Promise<GroupedPage> {
    const rows = await this.#read(async (client) => {
      const { rows: groups } = await client.query<{ group_id: string }>(`
        SELECT COALESCE(group_id, id) AS group_id FROM notifications WHERE user_id = $1 AND archived = $2 AND NOT deleted
        GROUP BY COALESCE(group_id, id) HAVING MAX(seq) < $3 ORDER BY MAX(seq) DESC LIMIT $4`, [userId, view.archived, before, limit + 1])
      const page = groups.slice(0, limit).map(({ group_id: id }) => id)
      const { rows: members } = await client.query<Row>(
        `SELECT ${ROW} FROM notifications WHERE user_id = $1 AND archived = $2 AND NOT deleted AND COALESCE(group_id, id) = ANY($3::text[]) ORDER BY seq DESC`,
        [userId, view.archived, page])
      return { more: groups.length > limit, page, members }
    })
    const members = new Map<string, StoredNotification[]>(rows.page.map((id) => [id, []]))
    for (const row of rows.members) members.get(row.group_id ?? row.id)!.push(toStored(row))
    const items = rows.page.map((id) => groupedItem(members.get(id)!))
    return { items, nextBefore: rows.more ? items[items.length - 1]!.newest.seq : null }
  }

  async after (userId: string, after: number, limit: number): Promise<StoredNotification[]> {
    const { rows } = await this.#read((client) => client.query<Row>(
      `SELECT ${ROW} FROM notifications WHERE user_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3`, [userId, after, limit]))
    return rows.map(toStored)
  }

  async unread (userId: string): Promise<number> {
    return (await this.feed(userId)).unread
  }

  async markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<FeedState> {
    const { feed: { newestSeq, unread, rev } } = await this.changeState(userId, 'upTo' in selection ? { op: 'read', upToSeq: selection.upTo } : { op: 'read', ...selection })
    return { newestSeq, unread, rev }
  }

  async changeState (userId: string, request: StateRequest): Promise<StateResult> {
    return await inTransaction(this.#apiPool, (client) => changeState(client, userId, request))
  }

  async stateAfter (userId: string, rev: number, limit: number): Promise<StateLog> {
    return await this.#read(async (client) => {
      const { rows: [feed] } = await client.query<{ state_floor: string }>('SELECT state_floor FROM feeds WHERE user_id = $1', [userId])
      const { rows } = await client.query<ChangeRow>(
        'SELECT rev, seq, change, unread, unseen FROM state_changes WHERE user_id = $1 AND rev > $2 ORDER BY rev LIMIT $3', [userId, rev, limit])
      return { changes: rows.map(toLoggedChange), floor: Number(feed?.state_floor ?? 0) }
    })
  }

  async preferences (userId: string): Promise<Muted> {
    const { rows } = await this.#read((client) => client.query<{ muted: string }>('SELECT muted FROM preferences WHERE user_id = $1', [userId]))
    return parseMuted(rows[0]?.muted)
  }

  async setPreferences (userId: string, muted: Muted): Promise<Muted> {
    await withConnection(this.#apiPool, (client) => client.query(
      'INSERT INTO preferences (user_id, muted) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET muted = excluded.muted', [userId, JSON.stringify(muted)]))
    return muted
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
 * Appends a batch (see Inbox.append). A stored position behind what this process stored (`applied`)
 * means the store lost those writes, and nothing must be stored over them. Muted notifications are
 * skipped before they get a seq; the others join or begin their groups.
 */
interface AppendContext {
  /** What this process stored before in each partition. */
  applied: ReadonlyMap<string, bigint>
  /** Gets the positions this batch leaves, for `applied` once committed. */
  stored: Map<string, bigint>
  groupWindowMs: number
}

async function appendBatch (client: PoolClient, records: ConsumedRecord[], ends: PartitionPosition[], { applied, stored, groupWindowMs }: AppendContext): Promise<AppendResult> {
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
      // Decided before a seq is given: a muted notification leaves no hole.
      if (isMuted(feed.muted, notification)) continue
      feed.newestSeq++
      appended.push({ seq: feed.newestSeq, notification, json, unread: 0, rev: feed.rev })
    }
    const groupIds = await assignGroups(client, appended, groupWindowMs)
    if (appended.length > 0) {
      const added = new Map<string, number>()
      for (const { notification } of appended) added.set(notification.userId, (added.get(notification.userId) ?? 0) + 1)
      // One statement, one round trip: the rows, the stored positions and the counters.
      const moved = movedPositions(positions)
      const { rows } = await client.query<{ user_id: string, unread: number }>(`
        WITH inserted AS (
          INSERT INTO notifications (user_id, seq, id, body, created_at, group_id)
          SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $12::text[])
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
        ...positionColumns(moved),
        groupIds
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

/** Locks (creating the missing ones) the feeds of `userIds`; returns each one's newest seq, rev and mute list. */
async function lockFeeds (client: PoolClient, userIds: string[]): Promise<Map<string, { newestSeq: number, rev: number, muted: Muted }>> {
  const sorted = [...userIds].sort(C_ORDER)
  const { rows } = await client.query<{ user_id: string, newest_seq: string, rev: string, muted: string | null }>(`
    WITH locked AS (
      INSERT INTO feeds (user_id, newest_seq, unread, stored)
      SELECT user_id, 0, 0, 0 FROM unnest($1::text[]) AS u (user_id)
      ON CONFLICT (user_id) DO UPDATE SET newest_seq = feeds.newest_seq
      RETURNING user_id, newest_seq, rev
    )
    SELECT l.user_id, l.newest_seq, l.rev, p.muted FROM locked l LEFT JOIN preferences p USING (user_id)`, [sorted])
  return new Map(rows.map(({ user_id: userId, newest_seq: seq, rev, muted }) => [userId, { newestSeq: Number(seq), rev: Number(rev), muted: parseMuted(muted ?? undefined) }]))
}

interface GroupRow { user_id: string, type: string, key: string, id: string, first_seq: string, started_at: Date, count: number, actor_count: number, actors: string }

function toOpenGroup (row: GroupRow): OpenGroup {
  const actors = JSON.parse(row.actors) as GroupSummary['actors']
  return { userId: row.user_id, type: row.type, key: row.key, id: row.id, firstSeq: Number(row.first_seq), startedAt: row.started_at.getTime(), started: row.started_at.toISOString(), count: row.count, actorCount: row.actor_count, actors }
}

/** An open group as loaded and as the batch grows it. */
interface OpenGroup extends GroupSummary {
  userId: string
  type: string
  firstSeq: number
  startedAt: number
  /** `startedAt` as written: the first notification's `createdAt`, which PostgreSQL refuses (class 22) if it is no instant. */
  started: string
}

/**
 * Puts each appended notification that has a group key in its user's open group of its type and
 * key (within the window), or begins one, in seq order, and writes the groups: three round trips
 * for a batch, none when nothing in it groups. Sets each one's `group`; returns every row's group id.
 */
async function assignGroups (client: PoolClient, appended: AppendedNotification[], windowMs: number): Promise<string[]> {
  const groupable = appended.filter(({ notification }) => groupKeyOf(notification) !== undefined)
  if (groupable.length === 0) return appended.map(({ notification }) => notification.id)
  const slot = (userId: string, type: string, key: string): string => `${userId}\u0000${type}\u0000${key}`
  const wanted = new Map(groupable.map(({ notification: n }) => [slot(n.userId, n.type, groupKeyOf(n)!), [n.userId, n.type, groupKeyOf(n)!] as const]))
  const { rows } = await client.query<GroupRow>(`
    SELECT DISTINCT ON (g.user_id, g.type, g.key) g.user_id, g.type, g.key, g.id, g.first_seq, g.started_at, g.count, g.actor_count, g.actors
    FROM groups g JOIN unnest($1::text[], $2::text[], $3::text[]) AS w (user_id, type, key) USING (user_id, type, key)
    WHERE g.open ORDER BY g.user_id, g.type, g.key, g.first_seq DESC`,
  [[...wanted.values()].map(([userId]) => userId), [...wanted.values()].map(([, type]) => type), [...wanted.values()].map(([, , key]) => key)])
  const open = new Map<string, OpenGroup>(rows.map((row) => [slot(row.user_id, row.type, row.key), toOpenGroup(row)]))
  // Which of the batch's actors the loaded groups have already.
  const candidates = groupable.flatMap(({ notification: n }) => {
    const group = open.get(slot(n.userId, n.type, groupKeyOf(n)!))
    return group === undefined || n.actor === null ? [] : [[n.userId, group.id, n.actor.id] as const]
  })
  const { rows: present } = candidates.length === 0
    ? { rows: [] }
    : await client.query<{ user_id: string, group_id: string, actor_id: string }>(`
      SELECT a.user_id, a.group_id, a.actor_id FROM group_actors a
      JOIN unnest($1::text[], $2::text[], $3::text[]) AS c (user_id, group_id, actor_id) USING (user_id, group_id, actor_id)`,
    [candidates.map(([userId]) => userId), candidates.map(([, groupId]) => groupId), candidates.map(([, , actorId]) => actorId)])
  const members = new Set(present.map(({ user_id: userId, group_id: groupId, actor_id: actorId }) => `${userId}\u0000${groupId}\u0000${actorId}`))
  const touched = new Map<string, OpenGroup>()
  const newActors: Array<readonly [string, string, string]> = []
  for (const row of groupable) {
    const { notification: n } = row
    const key = groupKeyOf(n)!
    const createdAt = Date.parse(n.createdAt)
    let group = open.get(slot(n.userId, n.type, key))
    if (group === undefined || !joinsGroup(group.startedAt, createdAt, windowMs)) {
      group = { userId: n.userId, type: n.type, key, id: n.id, firstSeq: row.seq, startedAt: createdAt, started: n.createdAt, count: 0, actorCount: 0, actors: [] }
      open.set(slot(n.userId, n.type, key), group)
    }
    group.count++
    if (n.actor !== null && !members.has(`${n.userId}\u0000${group.id}\u0000${n.actor.id}`)) {
      members.add(`${n.userId}\u0000${group.id}\u0000${n.actor.id}`)
      newActors.push([n.userId, group.id, n.actor.id])
      group.actorCount++
    }
    group.actors = withActor(group.actors, n.actor)
    touched.set(`${n.userId}\u0000${group.id}`, group)
    const { id, count, actorCount, actors } = group
    row.group = { id, key, count, actorCount, actors }
  }
  const groups = [...touched.values()]
  await client.query(`
    WITH actors AS (
      INSERT INTO group_actors (user_id, group_id, actor_id) SELECT * FROM unnest($10::text[], $11::text[], $12::text[]) ON CONFLICT DO NOTHING
    )
    INSERT INTO groups (user_id, id, type, key, first_seq, started_at, count, actor_count, actors)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::int[], $8::int[], $9::text[])
    ON CONFLICT (user_id, id) DO UPDATE SET count = excluded.count, actor_count = excluded.actor_count, actors = excluded.actors`, [
    groups.map(({ userId }) => userId), groups.map(({ id }) => id), groups.map(({ type }) => type), groups.map(({ key }) => key),
    groups.map(({ firstSeq }) => firstSeq), groups.map(({ started }) => started), groups.map(({ count }) => count),
    groups.map(({ actorCount }) => actorCount), groups.map(({ actors }) => JSON.stringify(actors)),
    newActors.map(([userId]) => userId), newActors.map(([, groupId]) => groupId), newActors.map(([, , actorId]) => actorId)
  ])
  return appended.map(({ notification, group }) => group?.id ?? notification.id)
}

/** A deleted notification: whose, whether the unread count counted it, and its group. */
interface Removed { user_id: string, counted: boolean, group_id: string }
const REMOVED = 'n.user_id, NOT n.read AND NOT n.archived AND NOT n.deleted AS counted, COALESCE(n.group_id, n.id) AS group_id'

/**
 * Deletes a chunk of the state log past the retention policy (by age, and each user's beyond the
 * newest `maxPerUser`), raising each user's floor so that a cursor older than it is reset, and a
 * chunk of groups begun before the age limit. Runs under the prune lock.
 */
async function pruneStateLog (client: PoolClient, retention: RetentionPolicy, cutoff: Date): Promise<void> {
  await client.query(`
    WITH expired AS (
      DELETE FROM state_changes s USING (SELECT user_id, rev FROM state_changes WHERE at < $1 ORDER BY at LIMIT $2) AS d
      WHERE s.user_id = d.user_id AND s.rev = d.rev RETURNING s.user_id, s.rev
    ), over AS (
      SELECT user_id, rev - $3 AS floor FROM feeds WHERE rev - state_floor > $3 LIMIT ${PRUNE_USERS}
    ), capped AS (
      DELETE FROM state_changes s USING over WHERE s.user_id = over.user_id AND s.rev <= over.floor RETURNING s.user_id, s.rev
    ), floors AS (
      SELECT user_id, MAX(rev) AS floor FROM (SELECT * FROM expired UNION ALL SELECT * FROM capped UNION ALL SELECT * FROM over) AS r GROUP BY user_id
    )
    UPDATE feeds f SET state_floor = GREATEST(f.state_floor, floors.floor) FROM floors WHERE f.user_id = floors.user_id`,
  [cutoff, PRUNE_CHUNK, retention.maxPerUser])
  await client.query(`
    WITH doomed AS (
      DELETE FROM groups g USING (SELECT user_id, id FROM groups WHERE started_at < $1 ORDER BY started_at LIMIT $2) AS d
      WHERE g.user_id = d.user_id AND g.id = d.id RETURNING g.user_id, g.id
    )
    DELETE FROM group_actors a USING doomed WHERE a.user_id = doomed.user_id AND a.group_id = doomed.id`, [cutoff, PRUNE_CHUNK])
}

async function pruneChunk (client: PoolClient, retention: RetentionPolicy, now: number): Promise<number> {
  const { rows: [lock] } = await client.query<{ locked: boolean }>(
    'SELECT pg_try_advisory_xact_lock($1, $2) AS locked', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.prune])
  if (lock?.locked !== true) return 0 // another gateway is pruning
  const cutoff = new Date(now - retention.maxAgeMs)
  await pruneStateLog(client, retention, cutoff)
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
  const removed: Removed[] = []
  if (expired.length > 0) {
    const { rows } = await client.query<Removed>(`
      DELETE FROM notifications n USING unnest($1::text[], $2::bigint[]) AS d (user_id, seq)
      WHERE n.user_id = d.user_id AND n.seq = d.seq AND n.created_at < $3
      RETURNING ${REMOVED}`, [expired.map(({ user_id: userId }) => userId), expired.map(({ seq }) => seq), cutoff])
    removed.push(...rows)
  }
  if (overCap.length > 0 && removed.length < PRUNE_CHUNK) {
    const { rows } = await client.query<Removed>(`
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
      RETURNING ${REMOVED}`, [overCap.map(({ user_id: userId }) => userId), retention.maxPerUser, PRUNE_CHUNK - removed.length])
    removed.push(...rows)
  }
  if (removed.length === 0) return 0
  const gone = new Map<string, { rows: number, unread: number }>()
  for (const { user_id: userId, counted } of removed) {
    const count = gone.get(userId) ?? { rows: 0, unread: 0 }
    count.rows++
    if (counted) count.unread++
    gone.set(userId, count)
  }
  // A group's summary would count a member the history no longer has.
  await client.query(`
    UPDATE groups g SET open = false FROM unnest($1::text[], $2::text[]) AS d (user_id, id)
    WHERE g.user_id = d.user_id AND g.id = d.id AND g.open`, [removed.map(({ user_id: userId }) => userId), removed.map(({ group_id: groupId }) => groupId)])
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
  return { seq: Number(row.seq), notification: JSON.parse(row.body) as StoredNotification['notification'], read: row.read, archived: row.archived, groupId: row.group_id ?? row.id }
}

function toLoggedChange ({ rev, seq, change, unread, unseen }: ChangeRow): LoggedChange {
  return { rev: Number(rev), seq: Number(seq), changes: JSON.parse(change) as LoggedChange['changes'], unread, unseen }
}

/**
 * What each state change sets on the rows it selects (`n`), and which of them it can move: "up to
 * a seq", read and archive then go through the V4 indexes and visit only the rows they change.
 */
const STATE_UPDATES: Readonly<Record<Exclude<StateRequest['op'], 'seen'>, { set: string, movable: string }>> = {
  read: { set: 'read = true', movable: 'NOT n.read' },
  unread: { set: 'read = false', movable: 'n.read' },
  archive: { set: 'archived = true', movable: 'NOT n.archived' },
  unarchive: { set: 'archived = false', movable: 'n.archived' },
  // The tombstone of feed-rules.ts, written in SQL: the content is gone in the same statement.
  delete: {
    set: `deleted = true, read = true, archived = false, body = json_build_object('id', n.id, 'type', n.body::json->>'type', 'userId', n.user_id,
      'createdAt', n.body::json->>'createdAt', 'actor', null, 'message', '', 'deleted', true)::text`,
    movable: 'true'
  }
}

/** One state change (see Inbox.changeState), the feed's row locked first like every writer. */
async function changeState (client: PoolClient, userId: string, request: StateRequest): Promise<StateResult> {
  const { rows: [feed] } = await client.query<FeedRow & { seen_seq: string }>('SELECT newest_seq, unread, rev, seen_seq FROM feeds WHERE user_id = $1 FOR UPDATE', [userId])
  if (feed === undefined) return { feed: { ...toFeedState(undefined), unseen: 0 }, change: undefined }
  let changed: string[] | undefined
  let unread = feed.unread
  const effective = withinFeed(request, Number(feed.newest_seq))
  if (effective.op === 'seen') {
    if (!('upToSeq' in effective)) throw new Error('seen takes upToSeq')
    const { rowCount } = await client.query('UPDATE feeds SET seen_seq = $2 WHERE user_id = $1 AND seen_seq < $2', [userId, effective.upToSeq])
    if (rowCount === 1) changed = []
  } else {
    const { set, movable } = STATE_UPDATES[effective.op]
    const [selected, value] = 'ids' in effective
      ? ['n.id = ANY($2::text[])', effective.ids]
      : 'groups' in effective ? ['COALESCE(n.group_id, n.id) = ANY($2::text[])', effective.groups] : ['n.seq <= $2', effective.upToSeq]
    // `o` is the row as it was: the unread count moves by the rows that stopped or began counting.
    const { rows } = await client.query<{ id: string, group_id: string | null, moved: number }>(`
      UPDATE notifications n SET ${set} FROM notifications o
      WHERE n.user_id = $1 AND NOT n.deleted AND ${movable} AND ${selected} AND o.user_id = n.user_id AND o.seq = n.seq
      RETURNING n.id, n.group_id, (NOT n.read AND NOT n.archived AND NOT n.deleted)::int - (NOT o.read AND NOT o.archived)::int AS moved`, [userId, value])
    if (rows.length > 0) changed = rows.map(({ id }) => id)
    for (const { moved } of rows) unread += moved
    if (rows.length > 0 && (effective.op === 'archive' || effective.op === 'delete')) {
      await client.query('UPDATE groups SET open = false WHERE user_id = $1 AND id = ANY($2::text[])', [userId, [...new Set(rows.map((row) => row.group_id ?? row.id))]])
    }
  }
  const { rows: [counted] } = await client.query<{ unseen: number }>(`
    SELECT count(*)::int AS unseen FROM notifications
    WHERE user_id = $1 AND seq > (SELECT seen_seq FROM feeds WHERE user_id = $1) AND NOT archived AND NOT deleted`, [userId])
  const unseen = counted!.unseen
  if (changed === undefined) return { feed: { ...toFeedState(feed), unseen }, change: undefined }
  const rev = Number(feed.rev) + 1
  const seq = Number(feed.newest_seq)
  const changes = [loggedChange(effective, changed)]
  await client.query(`
    WITH logged AS (INSERT INTO state_changes (user_id, rev, seq, at, change, unread, unseen) VALUES ($1, $2, $3, now(), $4, $5, $6))
    UPDATE feeds SET rev = $2, unread = $5 WHERE user_id = $1`, [userId, rev, seq, JSON.stringify(changes), unread, unseen])
  return { feed: { newestSeq: seq, unread, rev, unseen }, change: { rev, seq, changes, unread, unseen } }
}

import { Pool } from 'pg'
import t, { type Test } from 'tap'
import { ADVISORY_LOCK, PostgresInbox } from '../../server/inbox/postgres-inbox.js'
import { CALL_BOUND_MS, createPool, SESSION_TIMEOUTS_MS } from '../../server/inbox/postgres-session.js'
import { InboxRewoundError, InboxUnavailableError, type RetentionPolicy } from '../../server/inbox/types.js'
import { startPostgres, type TestPostgres } from '../helpers/postgres.js'
import { DAY_MS, fed, inboxContract, KEEP_ALL, notificationFor, recordsOf, TOPIC } from './contract.js'

const postgres = await startPostgres(t)

/** Takes a store of the current schema back to version 2 (before archive, delete, groups, seen, the state log and mute lists). */
const TO_VERSION_2 = `
  DROP TABLE groups; DROP TABLE group_actors; DROP TABLE state_changes; DROP TABLE preferences;
  ALTER TABLE notifications DROP COLUMN archived, DROP COLUMN deleted, DROP COLUMN group_id;
  ALTER TABLE feeds DROP COLUMN seen_seq, DROP COLUMN state_floor`
if (postgres !== undefined) {
  t.comment(`PostgreSQL initialised and started in ${postgres.startedInMs} ms`)
  inboxContract(t, async () => {
    const url = await postgres.createDatabase()
    return { open: async (retention = KEEP_ALL) => await PostgresInbox.open(url, retention) }
  })
  postgresOnly(postgres)
}

function postgresOnly (postgres: TestPostgres): void {
  /** Opens `count` inboxes on one new database at once, as gateways starting together; closed at teardown. */
  const gateways = async (t: Test, count: number, retention: RetentionPolicy = KEEP_ALL, url?: string): Promise<PostgresInbox[]> => {
    const database = url ?? await postgres.createDatabase()
    const inboxes = await Promise.all(Array.from({ length: count }, async () => await PostgresInbox.open(database, retention)))
    for (const inbox of inboxes) t.teardown(() => inbox.close())
    return inboxes
  }

  /** A connection of the operator's, to look at or change the database behind the inbox. */
  const sql = (t: Test, url: string): Pool => {
    const pool = new Pool({ connectionString: url, max: 2 })
    t.teardown(() => pool.end())
    return pool
  }

  t.test('gateways starting at once on a new database create the schema once and share one epoch', async (t) => {
    const inboxes = await gateways(t, 4)
    t.equal(new Set(inboxes.map(({ epoch }) => epoch)).size, 1, 'one epoch')
    t.same(inboxes.map(({ newEpochReason }) => newEpochReason).sort(), ['a new store', undefined, undefined, undefined],
      'one of them made it, the others found it')
    const [first, second] = inboxes
    await first!.append(recordsOf([notificationFor('1')]))
    t.same(await second!.feed('1'), { newestSeq: 1, unread: 1, rev: 0 }, 'and they share one store')
  })

  t.test('two gateways appending overlapping batches of one partition at once store each record once, seq contiguous', async (t) => {
    const url = await postgres.createDatabase()
    const [first, second] = await gateways(t, 2, KEEP_ALL, url)
    const operator = sql(t, url)
    const notifications = Array.from({ length: 300 }, (_, i) => notificationFor((['1', '2', '3'] as const)[i % 3]!))
    const records = recordsOf(notifications)
    let stored = 0
    const positions: number[] = []
    // Rounds of a rebalance each: both start at the committed offset, one reads further than the other.
    for (let from = 0; from < records.length; from += 50) {
      const [a, b] = await Promise.all([
        first!.append(records.slice(from, from + 30)),
        second!.append(records.slice(from, from + 50))
      ])
      stored += a.appended.length + b.appended.length
      const { rows: [position] } = await operator.query<{ next_offset: string }>('SELECT next_offset FROM consumed WHERE topic = $1 AND partition = 0', [TOPIC])
      positions.push(Number(position!.next_offset))
    }
    t.equal(stored, 300, 'every record stored by exactly one of the two')
    t.same(positions, [50, 100, 150, 200, 250, 300], 'the stored position is after the furthest batch, never back at the shorter one')
    for (const userId of ['1', '2', '3']) {
      const mine = notifications.filter((notification) => notification.userId === userId)
      const feed = await first!.after(userId, 0, 1000)
      t.same(feed.map(({ seq }) => seq), mine.map((_, i) => i + 1), `${userId}'s feed is 1…${mine.length}`)
      t.same(feed.map(({ notification }) => notification.id), mine.map(({ id }) => id), 'in offset order')
      t.same(await second!.feed(userId), { newestSeq: 100, unread: 100, rev: 0 })
    }
  })

  t.test('two gateways appending different partitions for the same users at once keep each feed contiguous', async (t) => {
    const [first, second] = await gateways(t, 2)
    const rounds = 20
    for (let round = 0; round < rounds; round++) {
      const batch = (): ReturnType<typeof notificationFor>[] => [notificationFor('1'), notificationFor('2'), notificationFor('3'), notificationFor('1')]
      await Promise.all([first!.append(recordsOf(batch(), 0, round * 4)), second!.append(recordsOf(batch(), 1, round * 4))])
    }
    for (const [userId, count] of [['1', 4 * rounds], ['2', 2 * rounds], ['3', 2 * rounds]] as const) {
      const feed = await first!.after(userId, 0, 1000)
      t.same(feed.map(({ seq }) => seq), Array.from({ length: count }, (_, i) => i + 1), `${userId}'s feed is 1…${count}`)
      t.same(await first!.feed(userId), { newestSeq: count, unread: count, rev: 0 })
    }
  })

  t.test('unread counters and row counts stay exact under concurrent appends, read marks and pruning on several gateways', async (t) => {
    const url = await postgres.createDatabase()
    const inboxes = await gateways(t, 3, { maxPerUser: 15, maxAgeMs: DAY_MS }, url)
    const work: Array<Promise<unknown>> = []
    for (let round = 0; round < 15; round++) {
      const inbox = inboxes[round % 3]!
      const other = inboxes[(round + 1) % 3]!
      work.push(inbox.append(recordsOf([notificationFor('1'), notificationFor('2'), notificationFor('1', 2 * DAY_MS)], round % 2, Math.floor(round / 2) * 3)))
      work.push(other.markRead('1', { upTo: round * 2 }))
      work.push(inboxes[(round + 2) % 3]!.prune())
    }
    await Promise.all(work)
    const { rows } = await sql(t, url).query<{ user_id: string, unread: number, stored: number, rows: string, unread_rows: string }>(`
      SELECT f.user_id, f.unread, f.stored, count(n.seq) AS rows, count(n.seq) FILTER (WHERE NOT n.read) AS unread_rows
      FROM feeds f LEFT JOIN notifications n USING (user_id) GROUP BY f.user_id, f.unread, f.stored ORDER BY f.user_id`)
    t.equal(rows.length, 2)
    for (const row of rows) {
      t.equal(row.unread, Number(row.unread_rows), `${row.user_id}'s unread counter is its unread rows`)
      t.equal(row.stored, Number(row.rows), `${row.user_id}'s row counter is its rows`)
    }
  })

  t.test('the epoch and every commit survive a crash of PostgreSQL', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    await fed(inbox!).append([notificationFor('1'), notificationFor('1')])
    await postgres.kill()
    await postgres.start()
    const [reopened] = await gateways(t, 1, KEEP_ALL, url)
    t.equal(reopened!.epoch, inbox!.epoch)
    t.equal(reopened!.newEpochReason, undefined)
    t.same(await reopened!.feed('1'), { newestSeq: 2, unread: 2, rev: 0 })
    t.same(await inbox!.feed('1'), { newestSeq: 2, unread: 2, rev: 0 }, 'a running gateway\'s pool reconnects')
  })

  t.test('while PostgreSQL is down every call rejects with InboxUnavailableError and readiness says why; all is back after its restart', async (t) => {
    const [inbox] = await gateways(t, 1)
    await fed(inbox!).append([notificationFor('1')])
    t.same(await inbox!.unreadyReasons(), [], 'ready while it answers')
    await postgres.kill()
    try {
      const reasons = await inbox!.unreadyReasons()
      t.match(reasons, [{ reason: 'inbox (PostgreSQL) unreachable', detail: /ECONNREFUSED|terminat|connect/ }], `readiness names the inbox, and the log gets why: ${JSON.stringify(reasons)}`)
      for (const [what, call] of [
        ['append', () => fed(inbox!).append([notificationFor('1')])],
        ['feed', () => inbox!.feed('1')],
        ['history', () => inbox!.history('1', 10)],
        ['after', () => inbox!.after('1', 0, 10)],
        ['markRead', () => inbox!.markRead('1', { upTo: 1 })],
        ['prune', () => inbox!.prune()]
      ] as Array<[string, () => Promise<unknown>]>) {
        await t.rejects(call(), InboxUnavailableError, `${what} says the store is unavailable, not that it is broken`)
      }
    } finally {
      await postgres.start()
    }
    t.same(await inbox!.unreadyReasons(), [], 'ready again')
    t.same(await inbox!.feed('1'), { newestSeq: 1, unread: 1, rev: 0 }, 'the failed append stored nothing')
  })

  // Regression: a gateway frozen (SIGSTOP, a VM pause) inside an append kept
  // its row locks for ever, and every other gateway's appends queued behind them without end.
  t.test('a lock another session keeps makes an append fail as unavailable within the lock timeout, and succeed once it is gone', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    await fed(inbox!).append([notificationFor('1')])
    const frozen = await sql(t, url).connect()
    t.teardown(() => frozen.release(true))
    await frozen.query('BEGIN')
    await frozen.query('SELECT * FROM consumed FOR UPDATE')
    await t.rejects(fed(inbox!, 1).append([notificationFor('1')]), { name: 'InboxUnavailableError', message: /lock timeout/ },
      'the append gives up on the lock (transient: the consumer holds its batch and tries again)')
    await frozen.query('ROLLBACK')
    t.same((await fed(inbox!, 1).append([notificationFor('1')])).map(({ seq }) => seq), [2], 'and goes on once the lock is released')
  })

  t.test('PostgreSQL ends a transaction of the inbox\'s sessions that its client left idle (a frozen gateway), releasing its locks', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    await fed(inbox!).append([notificationFor('1')])
    // A session as the inbox opens them, left inside a transaction as a frozen gateway leaves it.
    const pool = createPool(url, { role: 'frozen', max: 1 })
    t.teardown(() => pool.end())
    const frozen = await pool.connect()
    frozen.on('error', () => {})
    t.teardown(() => frozen.release(true))
    await frozen.query('BEGIN')
    await frozen.query('SELECT * FROM consumed FOR UPDATE')
    const ended = new Promise((resolve) => frozen.once('error', resolve))
    t.match(await ended, { code: '25P03' }, `PostgreSQL ended it after ${SESSION_TIMEOUTS_MS.idleInTransaction} ms idle in its transaction`)
    t.same((await fed(inbox!, 1).append([notificationFor('1')])).map(({ seq }) => seq), [2], 'and the locks it held are free')
  })

  t.test('a call to a server that stops answering fails as unavailable within its bound, and its connection is not used again', async (t) => {
    const url = await postgres.createDatabase()
    const inbox = await PostgresInbox.open(url, KEEP_ALL, { poolSize: 1 })
    t.teardown(() => inbox.close())
    const [appended] = await fed(inbox).append([notificationFor('1')])
    t.equal((await inbox.history('1', 10)).items.length, 1, 'the API\'s one connection is open')
    const { rows: [backend] } = await sql(t, url).query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'kafka-notify api'")
    // Its server process stops as in a VM pause: it answers nothing, and resets nothing.
    process.kill(backend!.pid, 'SIGSTOP')
    t.teardown(() => { process.kill(backend!.pid, 'SIGCONT') })
    await t.rejects(inbox.history('1', 10), { name: 'InboxUnavailableError', message: `inbox (PostgreSQL) did not answer within ${CALL_BOUND_MS} ms` })
    t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), [appended!.seq], 'the next call gets a new connection')
  })

  // Regression: one pool served the consumer, the readiness probe and every read.
  t.test('reads past the limit are refused at once as unavailable, while readiness uses connections of its own', async (t) => {
    const url = await postgres.createDatabase()
    let refused = 0
    const inbox = await PostgresInbox.open(url, KEEP_ALL, { poolSize: 2, onReadRefused: () => refused++ })
    t.teardown(() => inbox.close())
    await fed(inbox).append([notificationFor('1')])
    const operator = await sql(t, url).connect()
    t.teardown(() => operator.release(true))
    // The one read allowed at a time (pool of 2, less one for read marks) waits on a lock.
    await operator.query('BEGIN')
    await operator.query('LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE')
    const reads = Array.from({ length: 1002 }, () => inbox.history('1', 10).then(() => 'read', (error: Error) => error.message))
    const outcomes = await Promise.race([Promise.all(reads.slice(1001)), new Promise((resolve) => setImmediate(resolve, 'waiting'))])
    t.match(outcomes, [/^inbox \(PostgreSQL\) busy: 1000 reads already wait for one of 1 connections$/], 'one running, 1,000 waiting: the next is refused at once')
    t.equal(refused, 1, 'and counted')
    t.same(await inbox.unreadyReasons(), [], 'readiness answers meanwhile')
    await operator.query('ROLLBACK')
    const settled = await Promise.all(reads.slice(0, 1001))
    t.same([...new Set(settled)].filter((outcome) => outcome !== 'read' && !/^inbox \(PostgreSQL\) busy: waited 2000 ms/.test(outcome)), [], 'the others read, or gave up after waiting 2 s')
  })

  t.test('gateways reconciling a store that lost writes at once begin one new epoch, and each takes it', async (t) => {
    const url = await postgres.createDatabase()
    const inboxes = await gateways(t, 3, KEEP_ALL, url)
    await fed(inboxes[0]!).append([notificationFor('1'), notificationFor('1')])
    const before = inboxes[0]!.epoch
    const results = await Promise.all(inboxes.map(async (inbox) => await inbox.reconcile(TOPIC, new Map([[0, 5n], [1, 3n]]))))
    t.equal(new Set(inboxes.map(({ epoch }) => epoch)).size, 1, 'one epoch on every gateway')
    t.not(inboxes[0]!.epoch, before, 'a new one')
    t.same(results.map(({ epochChanged }) => epochChanged?.replace(/ \(.*$/, '')).sort(),
      ['another gateway began a new epoch', 'another gateway began a new epoch', 'the store is behind the consumer group\'s committed offsets'], 'one of them began it, the others took it')
    t.same(results.map(({ stored }) => [...stored]), Array(3).fill([[0, 2n], [1, 0n]]), 'each knows where to consume again from')
  })

  t.test('a database server that is not the one of before (a failover, a point-in-time recovery) begins a new epoch', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    t.same(await inbox!.reconcile(TOPIC, new Map()), { stored: new Map() }, 'the first check records the server')
    const { rows: [server] } = await sql(t, url).query<{ value: string }>("SELECT value FROM meta WHERE key = 'server'")
    t.match(server?.value, /^\d+\/[0-9A-F]{8}$/, 'as system identifier/timeline')
    t.same(await inbox!.reconcile(TOPIC, new Map()), { stored: new Map() }, 'the same server: nothing changes')
    // As a promoted standby would be: the same system identifier, on the next timeline.
    await sql(t, url).query("UPDATE meta SET value = split_part(value, '/', 1) || '/00000000' WHERE key = 'server'")
    const before = inbox!.epoch
    t.match((await inbox!.reconcile(TOPIC, new Map())).epochChanged, /not the one of before \(system identifier\/timeline \d+\/00000000 → \d+\/[0-9A-F]{8}\)/)
    t.not(inbox!.epoch, before)
  })

  // Regression: a store that loses writes while a gateway runs (a failover to a
  // standby that lagged) must not take new rows over the lost ones: their seqs would be issued twice.
  t.test('an append to a store that went behind what this gateway stored in it is refused until the positions are reconciled', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    await fed(inbox!).append([notificationFor('1'), notificationFor('1'), notificationFor('1')])
    // What the failover lost: the last two rows, their feed counts and the position past them.
    await sql(t, url).query('BEGIN; DELETE FROM notifications WHERE seq > 1; UPDATE feeds SET newest_seq = 1, unread = 1, stored = 1; UPDATE consumed SET next_offset = 1; COMMIT')
    await t.rejects(fed(inbox!, 3).append([notificationFor('1')]), InboxRewoundError, 'refused: it would take seq 2 again')
    t.same(await inbox!.feed('1'), { newestSeq: 1, unread: 1, rev: 0 }, 'nothing was stored')
    const { stored, epochChanged } = await inbox!.reconcile(TOPIC, new Map([[0, 3n]]))
    t.same(stored, new Map([[0, 1n]]), 'the consumer goes on from the position the store has')
    t.match(epochChanged, /partition 0: 1 < 3/)
    t.same((await fed(inbox!, 1).append([notificationFor('1')])).map(({ seq }) => seq), [2], 'and appends go on, in the new epoch')
  })

  t.test('after a restore, the documented statement gives the next start a new epoch', async (t) => {
    const url = await postgres.createDatabase()
    const [before] = await gateways(t, 1, KEEP_ALL, url)
    await fed(before!).append([notificationFor('1')])
    await before!.close()
    await sql(t, url).query("DELETE FROM meta WHERE key = 'epoch'") // docs/operations.md
    const [restored, another] = await gateways(t, 2, KEEP_ALL, url)
    t.not(restored!.epoch, before!.epoch)
    t.equal(restored!.epoch, another!.epoch, 'gateways starting together agree on it')
    t.same([restored!.newEpochReason, another!.newEpochReason].sort(), ['the epoch was reset (a restore)', undefined])
    t.same(await restored!.feed('1'), { newestSeq: 1, unread: 1, rev: 0 }, 'the data is kept')
  })

  t.test('prune runs on one gateway at a time: while another prunes, it returns 0 at once', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, { maxPerUser: 1000, maxAgeMs: DAY_MS }, url)
    await fed(inbox!).append([notificationFor('1', 2 * DAY_MS), notificationFor('1')])
    const other = await sql(t, url).connect()
    try {
      await other.query('BEGIN')
      await other.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.prune])
      t.equal(await inbox!.prune(), 0, 'the other gateway holds the prune lock')
      t.equal((await inbox!.history('1', 10)).items.length, 2)
      await other.query('COMMIT')
    } finally {
      other.release()
    }
    t.equal(await inbox!.prune(), 1, 'once it is done, this one prunes')
    t.same(await inbox!.feed('1'), { newestSeq: 2, unread: 1, rev: 0 })
  })

  t.test('a database of an unknown schema version is refused', async (t) => {
    const url = await postgres.createDatabase()
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    await inbox!.close()
    await sql(t, url).query("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    await t.rejects(PostgresInbox.open(url, KEEP_ALL), /schema version 99, this gateway knows only versions up to 4/)
  })

  t.test('read marks on several gateways at once each get a rev of their own: 1, 2, 3… with no gap', async (t) => {
    const url = await postgres.createDatabase()
    const inboxes = await gateways(t, 3, KEEP_ALL, url)
    const appended = await fed(inboxes[0]!).append(Array.from({ length: 12 }, () => notificationFor('1')))
    const marks = await Promise.all(appended.map(({ notification }, i) => inboxes[i % 3]!.markRead('1', { ids: [notification.id] })))
    t.same(marks.map(({ rev }) => rev).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1))
    t.same(marks.find(({ rev }) => rev === 12), { newestSeq: 12, unread: 0, rev: 12 }, 'the last one saw every other')
  })

  t.test('a store of schema version 1 (no read-state rev) is migrated: every feed at rev 0, read marks count from there', async (t) => {
    const url = await postgres.createDatabase()
    const [before] = await gateways(t, 1, KEEP_ALL, url)
    await fed(before!).append([notificationFor('1'), notificationFor('1')])
    await before!.close()
    await sql(t, url).query(`${TO_VERSION_2}; ALTER TABLE feeds DROP COLUMN rev; UPDATE meta SET value = '1' WHERE key = 'schema_version'`)
    const [inbox, another] = await gateways(t, 2, KEEP_ALL, url)
    t.same(await inbox!.feed('1'), { newestSeq: 2, unread: 2, rev: 0 })
    t.same(await another!.markRead('1', { upTo: 1 }), { newestSeq: 2, unread: 1, rev: 1 })
    t.equal((await sql(t, url).query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]?.value, '4', 'recorded as version 4')
  })

  t.test('a store of schema version 2 is migrated: nothing archived or deleted, each notification a group of its own, no state log, the rev kept', async (t) => {
    const url = await postgres.createDatabase()
    const [before] = await gateways(t, 1, KEEP_ALL, url)
    const [one] = await fed(before!).append([notificationFor('1'), notificationFor('1')])
    await before!.markRead('1', { upTo: 1 })
    await before!.close()
    await sql(t, url).query(`${TO_VERSION_2}; UPDATE meta SET value = '2' WHERE key = 'schema_version'`)
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    t.same(await inbox!.snapshot('1'), { newestSeq: 2, unread: 1, rev: 1, unseen: 2 })
    const { items } = await inbox!.grouped('1', 10, undefined, { archived: false })
    t.same(items.map(({ newest, count }) => [newest.seq, count]), [[2, 1], [1, 1]], 'each of the old notifications is a group of its own')
    t.same(await inbox!.stateAfter('1', 0, 10), { changes: [], floor: 0 })
    t.same((await inbox!.changeState('1', { op: 'archive', ids: [one!.notification.id] })).feed, { newestSeq: 2, unread: 1, rev: 2, unseen: 1 }, 'state changes go on from the kept rev')
    t.same(await inbox!.preferences('1'), { types: [], actors: [] })
  })

  t.test('a store of schema version 3 is migrated: the indexes of unread and in-inbox rows built, counts and states kept', async (t) => {
    const url = await postgres.createDatabase()
    const [before] = await gateways(t, 1, KEEP_ALL, url)
    const [one] = await fed(before!).append([notificationFor('1'), notificationFor('1'), notificationFor('1')])
    await before!.changeState('1', { op: 'archive', ids: [one!.notification.id] })
    await before!.close()
    await sql(t, url).query("DROP INDEX notifications_unread; DROP INDEX notifications_in_inbox; UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    const [inbox] = await gateways(t, 1, KEEP_ALL, url)
    t.same(await inbox!.snapshot('1'), { newestSeq: 3, unread: 2, rev: 1, unseen: 2 })
    t.same((await inbox!.changeState('1', { op: 'read', upToSeq: 3 })).feed, { newestSeq: 3, unread: 0, rev: 2, unseen: 2 }, 'a mark-all-read goes on from there')
    const { rows } = await sql(t, url).query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE indexname IN ('notifications_unread', 'notifications_in_inbox') ORDER BY indexname")
    t.same(rows.map(({ indexname }) => indexname), ['notifications_in_inbox', 'notifications_unread'])
  })

  t.test('a database whose meta table is another application\'s is refused', async (t) => {
    const url = await postgres.createDatabase()
    await sql(t, url).query('CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)')
    await t.rejects(PostgresInbox.open(url, KEEP_ALL), /give the inbox a database of its own/)
  })

  t.test('open fails when PostgreSQL cannot be reached', async (t) => {
    await t.rejects(PostgresInbox.open('postgres://postgres@127.0.0.1:1/none', KEEP_ALL), { code: 'INBOX_UNAVAILABLE', cause: { code: 'ECONNREFUSED' } })
  })
}

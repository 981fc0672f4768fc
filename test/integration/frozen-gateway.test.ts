import { execFile } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Pool } from 'pg'
import t from 'tap'
import { checkInbox, checkTabs, FollowStream, startSharedServices, signInAll, ResumingTab, USERS } from '../helpers/feed-checks.js'
import { tempDir, testEnv } from '../helpers/gateway.js'
import { spawnGateway, type SpawnedGateway } from '../helpers/gateway-process.js'
import { groupAssignment, testKafka } from '../helpers/kafka.js'
import { Waiters } from '../helpers/waiters.js'

const run = promisify(execFile)
const PACE_MS = 40
const BEFORE = 40
/** The promise under test: what the others accept after the freeze reaches its tabs this soon after it. */
const RECOVERY_BOUND_MS = 45_000
/** The stream goes on this long after the freeze: past the group's session timeout (10 s) and the rebalance. */
const STREAM_AFTER_FREEZE_MS = 20_000
/** Tries, and time, to catch the victim inside a transaction. */
const CATCH_TRIES = 200
const CATCH_BOUND_MS = 60_000
const BOUND_MS = 60_000

t.setTimeout(240_000)

// Regression: a gateway frozen (SIGSTOP, a VM pause, a network that drops
// packets) inside an append kept its backend `idle in transaction`, holding the `consumed` and
// `feeds` row locks of its partitions. Once the group gave its partitions to another gateway, that
// one's appends queued behind the locks for ever, and, since a gateway merges all its partitions
// into one transaction, so did everything it owned; /readyz stayed 200.
t.test('a gateway frozen inside an append transaction: every follow the others accept reaches its tabs within 45 s of the freeze, once, in order', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const { databaseUrl, env, postgres } = shared
  const gateways = await Promise.all([0, 1, 2].map(async (i) => await spawnGateway(t, testEnv(tempDir(t), { ...env, KAFKA_CLIENT_ID: `gateway-${i}` }))))
  const admin = testKafka().admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())
  const operator = new Pool({ connectionString: databaseUrl, max: 1 })
  t.teardown(() => operator.end())

  const tokens = await signInAll(gateways[0]!.url)
  const targets = gateways.map(({ url }) => url)
  const stream = new FollowStream({ targets, tokens, paceMs: PACE_MS })
  stream.start()
  await stream.accepting(BEFORE, BOUND_MS)

  // The victim consumes the partitions that hold the most records: its locks are in the way.
  const offsets = await admin.fetchTopicOffsets(env.KAFKA_TOPIC!)
  const records = new Map(offsets.map(({ partition, high }) => [partition, Number(high)]))
  const assignment = await groupAssignment(admin, env.KAFKA_GROUP_ID!, env.KAFKA_TOPIC!)
  const load = (i: number): number => (assignment.get(`gateway-${i}`) ?? []).reduce((sum, partition) => sum + (records.get(partition) ?? 0), 0)
  const index = [0, 1, 2].sort((a, b) => load(b) - load(a))[0]!
  const victim: SpawnedGateway = gateways[index]!
  const others = gateways.filter((gateway) => gateway !== victim)
  t.equal(assignment.size, 3, `three members; the victim, gateway ${index}, consumes partitions ${assignment.get(`gateway-${index}`)?.join(', ')}`)
  // Clients of a frozen gateway get no answer at all: they are the load balancer's to move, not
  // this test's. From here on the stream posts to the others only, and the tabs live there.
  targets.splice(0, targets.length, ...others.map(({ url }) => url))
  const waiters = new Waiters()
  const tabs: ResumingTab[] = []
  for (const gateway of others) {
    for (const userId of USERS) tabs.push(await ResumingTab.open(t, { userId, token: tokens.get(userId)!, url: gateway.url, waiters }))
  }

  const caught = await freezeInTransaction(victim)
  const frozenAt = Date.now()
  const acceptedAtFreeze = stream.acceptedCount
  t.pass(`gateway ${index} frozen (SIGSTOP) after ${caught.tries} tries, its backend ${caught.backend} '${caught.state}', holding ${caught.locks} locks`)

  await delay(Math.max(0, frozenAt + STREAM_AFTER_FREEZE_MS - Date.now()))
  await stream.stop()
  const accepted = stream.acceptedIds
  await checkTabs(t, stream, tabs, Math.max(1000, frozenAt + RECOVERY_BOUND_MS - Date.now()))
  await checkInbox(t, databaseUrl, stream)

  // How late the others' deliveries were: from the freeze (or a later 202) to the last tab's frame.
  const acceptedAt = new Map(stream.answers.flatMap(({ id, at }) => id === undefined ? [] : [[id, at] as const]))
  const afterFreeze = accepted.filter((id) => acceptedAt.get(id)! >= frozenAt)
  const latest = (id: string): number => Math.max(...tabs.filter((tab) => tab.received.some((r) => r.id === id)).map((tab) => tab.received.find((r) => r.id === id)!.at))
  const delays = afterFreeze.map((id) => latest(id) - acceptedAt.get(id)!)
  t.ok(afterFreeze.length > 0, `${afterFreeze.length} follows accepted by the others after the freeze, ${acceptedAtFreeze} before it`)
  t.comment(`measured: the slowest of the follows accepted after the freeze reached its last tab ${(Math.max(...delays) / 1000).toFixed(1)} s after its 202 ` +
    `(the others: ${(delays.filter((ms) => ms < 1000).length)} of ${delays.length} within 1 s)`)
  const readiness = await Promise.all(others.map(async ({ url }) => (await fetch(`${url}/readyz`)).status))
  t.same(readiness, [200, 200], 'the others are ready')

  /**
   * Watches pg_stat_activity for a transaction of the victim's consumer (NOTES: `ss` tells which
   * process holds which client port), SIGSTOPs the victim and checks that the transaction is still
   * open, holding its locks; else lets it go on and tries again.
   */
  async function freezeInTransaction (gateway: SpawnedGateway): Promise<{ tries: number, backend: number, state: string, locks: number }> {
    const deadline = Date.now() + CATCH_BOUND_MS
    for (let tries = 1; tries <= CATCH_TRIES && Date.now() < deadline; tries++) {
      const ports = await clientPorts(gateway.pid)
      let backend: { pid: number, client_port: number } | undefined
      for (let poll = 0; poll < 200 && backend === undefined; poll++) {
        const { rows } = await operator.query<{ pid: number, client_port: number }>(`
          SELECT pid, client_port FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'kafka-notify%' AND xact_start IS NOT NULL AND client_port = ANY($1::int[])`, [ports])
        backend = rows[0]
      }
      if (backend === undefined) continue
      process.kill(gateway.pid, 'SIGSTOP')
      await delay(300)
      const { rows: [held] } = await operator.query<{ state: string, locks: string }>(`
        SELECT a.state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid) AS locks FROM pg_stat_activity a WHERE a.pid = $1`, [backend.pid])
      if (held?.state === 'idle in transaction') {
        t.teardown(() => { process.kill(gateway.pid, 'SIGCONT') })
        return { tries, backend: backend.pid, state: held.state, locks: Number(held.locks) }
      }
      process.kill(gateway.pid, 'SIGCONT')
    }
    throw new Error(`could not catch gateway ${gateway.pid} inside a transaction in ${CATCH_TRIES} tries`)
  }

  /** The local ports of `pid`'s connections to the test's PostgreSQL. */
  async function clientPorts (pid: number): Promise<number[]> {
    const { stdout } = await run('ss', ['-tnpH', 'state', 'established', `( dport = :${postgres.port} )`])
    return stdout.split('\n').filter((line) => line.includes(`pid=${pid},`)).map((line) => Number(/:(\d+)\s+\S+:\d+\s/.exec(line)?.[1]))
  }
})

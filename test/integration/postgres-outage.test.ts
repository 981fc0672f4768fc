import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { FeedClient, readiness } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { checkInbox, checkTabs, FollowStream, startSharedServices, signInAll, ResumingTab, USERS, waitReady } from '../helpers/feed-checks.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { testKafka } from '../helpers/kafka.js'
import { Waiters } from '../helpers/waiters.js'

/** The outage itself: PostgreSQL is down this long. */
const OUTAGE_MS = 10_000
/** Batches handled before the kill are committed within the commit interval (1 s); then nothing may move. */
const SETTLED_MS = 2500
const PACE_MS = 40
const BEFORE = 40
const AFTER = 40
const BOUND_MS = 60_000
const READYZ_POLL = { timeoutMs: 5000, everyMs: 100 }

// Two gateways on one PostgreSQL inbox and one Redis fan-out; PostgreSQL stops for 10 s mid-stream.
// Kafka still takes every follow; the consumers hold their batches and retry them, committing
// nothing, until the inbox is back; then every follow is stored once and reaches every open tab
// once, in seq order.
t.test('PostgreSQL down for 10 s mid-stream: POSTs still get 202, consuming holds without committing, /readyz says why, then everything is stored and delivered once, in order', async (t) => {
  const shared = await startSharedServices(t)
  if (shared === undefined) return
  const { databaseUrl, env, postgres } = shared
  const gateways: Gateway[] = [await startGateway(t, { env }), await startGateway(t, { env })]
  for (const gateway of gateways) await waitReady(gateway.url)
  const [a, b] = gateways as [Gateway, Gateway]
  const { topic, groupId } = a.config.kafka
  const admin = testKafka().admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())

  const tokens = await signInAll(a.url)
  const waiters = new Waiters()
  const tabs: ResumingTab[] = []
  for (const gateway of gateways) {
    for (const userId of USERS) tabs.push(await ResumingTab.open(t, { userId, token: tokens.get(userId)!, url: gateway.url, waiters }))
  }
  const stream = new FollowStream({ targets: [a.url, b.url], tokens, paceMs: PACE_MS })
  stream.start()
  await stream.accepting(BEFORE, BOUND_MS)

  await postgres.kill()
  const killedAt = Date.now()
  const acceptedAtKill = stream.acceptedCount
  try {
    await t.test('while PostgreSQL is down', async (t) => {
      for (const gateway of gateways) {
        const { status, reasons } = await eventually(`/readyz on ${gateway.url} names the inbox`, () => readiness(gateway.url), ({ reasons }) => reasons.some((reason) => /^inbox \(PostgreSQL\)/.test(reason)), READYZ_POLL)
        t.equal(status, 503, `/readyz on ${gateway.url} is 503`)
        t.ok(reasons.includes('inbox (PostgreSQL) unreachable'), `and names the inbox: ${reasons.join('; ')}`)
      }
      // A gateway whose partitions got no record since the kill has nothing to hold; one has.
      const holding = await eventually('a gateway holds its batches', () => Promise.all(gateways.map(async (gateway) => await readiness(gateway.url))),
        (answers) => answers.some(({ reasons }) => reasons.some((reason) => reason.startsWith('consumer holding its batches'))), READYZ_POLL)
      t.ok(holding.flatMap(({ reasons }) => reasons).includes('consumer holding its batches, retrying'),
        'the consumer that got records holds them and retries, and says so')

      const history = await fetch(`${b.url}/api/notifications`, { headers: { authorization: `Bearer ${tokens.get('1')!}` } })
      t.equal(history.status, 503, 'history: 503, not 500')
      t.match(await history.json(), { code: 'INBOX_UNAVAILABLE' })
      t.ok(Number(history.headers.get('retry-after')) > 0, 'with Retry-After')
      const read = await fetch(`${a.url}/api/notifications/read`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.get('2')!}`, 'content-type': 'application/json' },
        body: JSON.stringify({ upTo: '0' })
      })
      t.equal(read.status, 503, 'a read mark: 503')
      t.match(await read.json(), { code: 'INBOX_UNAVAILABLE' })
      const late = await FeedClient.connect(a.url, tokens.get('3')!, { since: '0' })
      t.teardown(() => late.close())
      t.match(await late.closed, { code: 1013 }, 'a socket whose catch-up cannot read the inbox is closed with 1013 (try again later)')

      await delay(Math.max(0, killedAt + SETTLED_MS - Date.now()))
      const committed = await committedOffsets()
      const frames = tabs.map((tab) => tab.received.length)
      const acceptedThen = stream.acceptedCount
      await delay(Math.max(0, killedAt + OUTAGE_MS - Date.now()))
      t.ok(stream.acceptedCount > acceptedThen, `POSTs still get 202: ${stream.acceptedCount - acceptedAtKill} accepted during the outage`)
      t.same(await committedOffsets(), committed, `no committed offset moved from ${SETTLED_MS / 1000} s to ${OUTAGE_MS / 1000} s into the outage`)
      t.ok(sum(await endOffsets()) > sum(committed), `while the topic holds ${sum(await endOffsets()) - sum(committed)} records past them`)
      t.same(tabs.map((tab) => tab.received.length), frames, 'and no tab got a notification meanwhile: consuming paused')
    })
  } finally {
    await postgres.start()
  }
  const restartedAt = Date.now()

  for (const gateway of gateways) await waitReady(gateway.url, BOUND_MS)
  t.pass(`both gateways ready again ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after PostgreSQL restarted`)
  await stream.accepting(AFTER, BOUND_MS)
  await stream.stop()
  await checkTabs(t, stream, tabs, BOUND_MS)
  await checkInbox(t, databaseUrl, stream)
  // Every record is handled by now; the committer stores that within its interval.
  const end = await endOffsets()
  const committedAtEnd = await eventually('every record committed', async () => sum(await committedOffsets()), (total) => total >= sum(end), { timeoutMs: BOUND_MS, everyMs: 200 })
  t.equal(committedAtEnd, sum(end), 'commits went on: the group committed every record')
  for (const gateway of gateways) {
    t.notMatch(await (await fetch(`${gateway.url}/metrics`)).text(), /^notify_consumer_crashes_total\{restarted_by="gateway"\} [1-9]/m,
      `${gateway.url} held its batches and retried them: its consumer was never restarted (no rebalance churn)`)
  }
  t.comment(`${stream.acceptedCount} follows accepted, ${stream.acceptedCount - acceptedAtKill} of them after the kill; ${tabs.length} tabs`)

  async function committedOffsets (): Promise<number[]> {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return offsets!.partitions.sort((x, y) => x.partition - y.partition).map(({ offset }) => Math.max(0, Number(offset)))
  }
  async function endOffsets (): Promise<number[]> {
    return (await admin.fetchTopicOffsets(topic)).sort((x, y) => x.partition - y.partition).map(({ high }) => Number(high))
  }
})

function sum (values: number[]): number {
  return values.reduce((total, value) => total + value, 0)
}

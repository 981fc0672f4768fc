import { setTimeout as delay } from 'node:timers/promises'
import { Pool } from 'pg'
import t from 'tap'
import { FeedClient, signIn } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { tempDir, testEnv } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/gateway-process.js'
import { rawProducer } from '../helpers/kafka.js'
import { startPostgres } from '../helpers/postgres.js'
import { followNotification, type Notification } from '../../server/notification.js'

const USERS = ['1', '2', '3', '4'] as const
const names: Record<string, string> = { 1: 'Emma', 2: 'Bruno', 3: 'Rick', 4: 'Lena' }
/** Each user's history before the storm: full pages of long messages, so that each read costs something. */
const STORED_PER_USER = 100
const READERS = 1000
/** The storm lasts this long, each reader at most this many reads: bounded either way. */
const STORM_MS = 12_000
const READS_PER_READER = 100
/** Records produced while the storm runs, one every PACE_MS: the consumer must keep up. */
const PACE_MS = 50
const BOUND_MS = 60_000

t.setTimeout(180_000)

function notificationFor (userId: string, message: string): Notification {
  return { ...followNotification({ id: userId === '1' ? '2' : '1', name: 'Someone' }, { id: userId, name: names[userId]! }), message }
}

// Regression: one pool of connections served the consumer's appends, every
// history and catch-up read and the readiness probe. A flood of reads (or a reconnect storm) made
// the consumer wait for a connection longer than its connect timeout, which it took for "PostgreSQL
// down": it held its batches, and after 30 s restarted, rebalancing every gateway; /readyz said 503.
t.test('1,000 concurrent history reads on a pool of 2 never make the consumer hold its batches: records go on being delivered, /readyz stays 200, reads past the cap get 503 INBOX_UNAVAILABLE', async (t) => {
  const postgres = await startPostgres(t)
  if (postgres === undefined) return
  const databaseUrl = await postgres.createDatabase()
  const env = testEnv(tempDir(t), { DATABASE_URL: databaseUrl, DATABASE_POOL_SIZE: '2' })
  const gateway = await spawnGateway(t, env)
  const tokens = new Map(await Promise.all(USERS.map(async (id) => [id, await signIn(gateway.url, id)] as const)))
  const producer = await rawProducer(t)
  const send = async (notifications: Notification[]): Promise<void> => {
    await producer.send({ topic: env.KAFKA_TOPIC!, messages: notifications.map((notification) => ({ key: notification.userId, value: JSON.stringify(notification) })) })
  }

  await send(USERS.flatMap((userId) => Array.from({ length: STORED_PER_USER }, (_, i) => notificationFor(userId, `${i} ${'x'.repeat(900)}`))))
  const operator = new Pool({ connectionString: databaseUrl, max: 1 })
  t.teardown(() => operator.end())
  await eventually('every notification stored', async () => Number((await operator.query('SELECT count(*) AS n FROM notifications').catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n),
    (stored) => stored >= USERS.length * STORED_PER_USER, { timeoutMs: BOUND_MS, everyMs: 200 })
  const tab = await FeedClient.connect(gateway.url, tokens.get('1')!)
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')

  const stormEnds = Date.now() + STORM_MS
  const answers = new Map<string, number>()
  const readers = Array.from({ length: READERS }, async (_, i) => {
    const token = tokens.get(USERS[i % USERS.length]!)!
    for (let read = 0; read < READS_PER_READER && Date.now() < stormEnds; read++) {
      const response = await fetch(`${gateway.url}/api/notifications?limit=100`, { headers: { authorization: `Bearer ${token}` } })
      const body = await response.json() as { code?: string }
      const answer = `${response.status}${body.code === undefined ? '' : ` ${body.code}`}`
      answers.set(answer, (answers.get(answer) ?? 0) + 1)
      // As a client does: a refusal says when to come back.
      if (response.status === 503) await delay(Number(response.headers.get('retry-after')) * 1000)
    }
  })
  const produced: string[] = []
  const producing = (async () => {
    while (Date.now() < stormEnds) {
      const notification = notificationFor('1', `live ${produced.length}`)
      await send([notification])
      produced.push(notification.id)
      await delay(PACE_MS)
    }
  })()
  const readiness: Array<{ status: number, reasons: string[] }> = []
  const probing = (async () => {
    while (Date.now() < stormEnds) {
      const response = await fetch(`${gateway.url}/readyz`)
      const { reasons = [] } = await response.json() as { reasons?: string[] }
      readiness.push({ status: response.status, reasons })
      await delay(250)
    }
  })()
  await Promise.all([...readers, producing, probing])

  const delivered: string[] = []
  while (delivered.length < produced.length) delivered.push(((await tab.nextOf('notification', BOUND_MS)).notification as { id: string }).id)
  t.same(delivered, produced, `the ${produced.length} records produced during the storm reached the tab, in order`)
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
  t.match(metrics, /^notify_consumer_holds_total 0$/m, 'the consumer never held its batches')
  t.notMatch(metrics, /^notify_consumer_crashes_total\{restarted_by="gateway"\} [1-9]/m, 'nor restarted')
  const unready = readiness.filter(({ status }) => status !== 200)
  t.same(unready, [], `/readyz answered 200 to all of its ${readiness.length} probes`)
  t.same([...answers.keys()].filter((answer) => answer !== '200' && answer !== '503 INBOX_UNAVAILABLE'), [], 'each read got its page or 503 INBOX_UNAVAILABLE (with Retry-After)')
  t.ok((answers.get('200') ?? 0) > 0, 'and reads were served meanwhile')
  const refused = /^notify_inbox_reads_refused_total (\d+)$/m.exec(metrics)?.[1]
  t.comment(`reads: ${JSON.stringify(Object.fromEntries(answers))}; refused by the read cap: ${refused ?? 'no metric'}; ${produced.length} records delivered`)
})

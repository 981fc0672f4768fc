import { Pool } from 'pg'
import t, { type Test } from 'tap'
import { FeedClient, signIn, type Frame } from '../helpers/clients.js'
import { waitReady } from '../helpers/feed-checks.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { rawProducer, readTopic } from '../helpers/kafka.js'
import { startPostgres } from '../helpers/postgres.js'
import { followNotification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
/** "Within seconds": far less than a consumer restart loop would ever let through. */
const DELIVERY_BOUND_MS = 10_000

const postgres = await startPostgres(t)

/** A ready gateway on a PostgreSQL inbox of its own, with a tab of Emma's open on it. */
async function gatewayWithTab (t: Test): Promise<{ gateway: Gateway, databaseUrl: string, tab: FeedClient }> {
  const databaseUrl = await postgres!.createDatabase()
  const gateway = await startGateway(t, { env: { DATABASE_URL: databaseUrl } })
  await waitReady(gateway.url)
  const tab = await FeedClient.connect(gateway.url, await signIn(gateway.url, '1'))
  t.teardown(() => tab.close())
  t.equal((await tab.next()).type, 'ready')
  return { gateway, databaseUrl, tab }
}

/** Polls /readyz until `until` resolves; returns every status it answered meanwhile. */
async function readinessWhile (url: string, until: Promise<unknown>): Promise<number[]> {
  const statuses: number[] = []
  const state = { done: false }
  void until.finally(() => { state.done = true }).catch(() => {})
  while (!state.done) {
    statuses.push((await fetch(`${url}/readyz`)).status)
    await Promise.race([until.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 100))])
  }
  return statuses
}

async function notificationIds (tab: FeedClient, count: number): Promise<string[]> {
  const ids: string[] = []
  while (ids.length < count) {
    const frame: Frame = await tab.nextOf('notification', DELIVERY_BOUND_MS)
    ids.push((frame.notification as { id: string }).id)
  }
  return ids
}

async function gatewayCrashes (gateway: Gateway): Promise<string> {
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
  return /^notify_consumer_crashes_total\{restarted_by="gateway"\} (\d+)/m.exec(metrics)?.[1] ?? '0'
}

if (postgres !== undefined) {
  // Regression: Date.parse takes these for real dates (the next day, March 1st,
  // May 1st, year 0), PostgreSQL refused the batch with 22008, the error was not transient, and the
  // consumer restarted for ever (a rebalance of every gateway each time) while POSTs got 202.
  t.test('impossible dates produced straight to the topic go to the DLQ as invalid; a follow after them is delivered within seconds and /readyz stays 200', async (t) => {
    const { gateway, tab } = await gatewayWithTab(t)
    const { topic, dlqTopic } = gateway.config.kafka
    const impossible = ['2025-02-29T10:00:00Z', '2026-04-31T10:00:00Z', '2026-01-01T24:00:00Z', '0000-01-01T00:00:00Z']
    const good = followNotification(bruno, emma)
    const producer = await rawProducer(t)
    const producedAt = Date.now()
    await producer.send({
      topic,
      messages: [
        ...impossible.map((createdAt) => ({ key: '1', value: JSON.stringify({ ...followNotification(bruno, emma), createdAt }), partition: 0 })),
        { key: '1', value: JSON.stringify(good), partition: 0 }
      ]
    })
    const delivered = notificationIds(tab, 1)
    const statuses = await readinessWhile(gateway.url, delivered)
    t.same(await delivered, [good.id], `the follow after them reached the tab within ${DELIVERY_BOUND_MS / 1000} s`)
    t.comment(`measured: produced to delivered in ${Date.now() - producedAt} ms`)
    t.same(statuses.filter((status) => status !== 200), [], `/readyz answered 200 all along (${statuses.length} probes)`)

    const dead = await readTopic(t, dlqTopic, impossible.length)
    t.same(dead.map((message) => (JSON.parse(message.value!.toString()) as { createdAt: string }).createdAt), impossible, 'every impossible date is in the DLQ, in order')
    t.same(dead.map((message) => message.headers?.['dlq-reason']?.toString().replace(/ \(.*$/, '')), impossible.map(() => 'invalid: value.createdAt is not a date of the calendar'), 'each as invalid, naming the field')
    t.equal(await gatewayCrashes(gateway), '0', 'the consumer never restarted')
  })

  // Regression: any error the store gives for one record and would give again
  // (PostgreSQL's data exceptions, class 22, and integrity violations, class 23) failed the whole
  // batch and restarted the consumer for ever. Here a CHECK constraint the operator added stands
  // for such a record: it is dead-lettered with the store's reason, the others around it are stored.
  t.test('records the PostgreSQL inbox refuses are dead-lettered with its reason; the rest of their batch is stored and delivered in order, and the consumer never restarts', async (t) => {
    const { gateway, databaseUrl, tab } = await gatewayWithTab(t)
    const { topic, dlqTopic } = gateway.config.kafka
    const operator = new Pool({ connectionString: databaseUrl, max: 1 })
    t.teardown(() => operator.end())
    await operator.query("ALTER TABLE notifications ADD CONSTRAINT refuse_marked CHECK (body NOT LIKE '%refuse me%')")

    const batch = [
      followNotification(bruno, emma),
      { ...followNotification(bruno, emma), message: 'Bruno says: refuse me' },
      followNotification(bruno, emma),
      followNotification(bruno, emma),
      { ...followNotification(bruno, emma), message: 'Bruno says: refuse me too' },
      followNotification(bruno, emma)
    ]
    const refused = batch.filter(({ message }) => message.includes('refuse me'))
    const stored = batch.filter((notification) => !refused.includes(notification))
    const producer = await rawProducer(t)
    // One produce request: the consumer gets them as one batch.
    await producer.send({ topic, messages: batch.map((notification) => ({ key: '1', value: JSON.stringify(notification), partition: 0 })) })

    t.same(await notificationIds(tab, stored.length), stored.map(({ id }) => id), 'the records around the refused ones reach the tab, in order')
    const { rows } = await operator.query<{ id: string, seq: string }>("SELECT id, seq FROM notifications WHERE user_id = '1' ORDER BY seq")
    t.same(rows.map(({ id, seq }) => [id, Number(seq)]), stored.map(({ id }, i) => [id, i + 1]), 'and are in the inbox as seq 1, 2, 3, 4')
    const dead = await readTopic(t, dlqTopic, refused.length)
    t.same(dead.map((message) => (JSON.parse(message.value!.toString()) as { id: string }).id), refused.map(({ id }) => id), 'the refused ones are in the DLQ, in order')
    for (const message of dead) t.match(message.headers?.['dlq-reason']?.toString(), /^refused: .*23514/, 'with the store\'s reason (SQLSTATE 23514: check violation)')
    t.equal(await gatewayCrashes(gateway), '0', 'the consumer never restarted')
  })
}

import t from 'tap'
import { FeedClient, follow, signIn } from '../helpers/clients.js'
import { startGateway, uniqueName, type Gateway } from '../helpers/gateway.js'
import { startPostgres } from '../helpers/postgres.js'
import { startRedis } from '../helpers/redis.js'

const AUTH_SECRET = 'gateways-test-secret-of-thirty-two-chars'
const FOLLOWS = 60
const BOUND_MS = 60_000

// Scale-out (issue 10, test 1): three gateways in one consumer group, one PostgreSQL inbox, one
// Redis fan-out. Whichever gateway consumes a record, every open tab of its recipient, on any
// gateway, gets it exactly once and in seq order.
t.test('three gateways, tabs spread over them, follows POSTed round-robin: every 202 reaches every open tab of its recipient once, in seq order', async (t) => {
  const postgres = await startPostgres(t)
  const redis = await startRedis(t)
  if (postgres === undefined || redis === undefined) return
  const topic = uniqueName('notifications')
  const env = {
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    KAFKA_GROUP_ID: uniqueName('group'),
    KAFKA_PARTITIONS: '6',
    DATABASE_URL: await postgres.createDatabase(),
    REDIS_URL: redis.url,
    AUTH_SECRET
  }
  const gateways: Gateway[] = []
  for (let i = 0; i < 3; i++) gateways.push(await startGateway(t, { env }))
  const [a, b, c] = gateways as [Gateway, Gateway, Gateway]
  for (const gateway of gateways) await ready(gateway)

  const tokens = new Map<string, string>()
  for (const id of ['1', '2', '3', '4']) tokens.set(id, await signIn(a.url, id))
  // Emma and Rick have tabs on two gateways each.
  const placement: Array<[string, Gateway]> = [['1', a], ['1', b], ['2', b], ['3', c], ['3', a], ['4', c]]
  const tabs = await Promise.all(placement.map(async ([userId, gateway]) => ({ userId, client: await FeedClient.connect(gateway.url, tokens.get(userId)!) })))
  t.teardown(() => { for (const { client } of tabs) client.close() })
  for (const { client } of tabs) t.match(await client.next(), { type: 'ready', seq: 0 })

  const accepted = new Map<string, string[]>([['1', []], ['2', []], ['3', []], ['4', []]])
  for (let i = 0; i < FOLLOWS; i++) {
    const followee = String(1 + (i % 4))
    const follower = String(1 + ((i + 1 + (i % 3)) % 4))
    const gateway = gateways[i % 3]!
    const response = await follow(gateway.url, tokens.get(follower === followee ? String(1 + (i + 2) % 4) : follower)!, followee)
    t.equal(response.status, 202, `follow ${i} on gateway ${i % 3}`)
    accepted.get(followee)!.push(((await response.json()) as { notification: { id: string } }).notification.id)
  }

  for (const [index, { userId, client }] of tabs.entries()) {
    const expected = accepted.get(userId)!
    const received: Array<{ id: string, seq: number }> = []
    while (received.length < expected.length) {
      const frame = await client.next(BOUND_MS)
      if (frame.type === 'notification') received.push({ id: (frame.notification as { id: string }).id, seq: frame.seq as number })
    }
    t.same(received.map(({ seq }) => seq), expected.map((_, i) => i + 1), `tab ${index} (user ${userId}): seq 1, 2, 3… with no hole and no repeat`)
    t.same(new Set(received.map(({ id }) => id)), new Set(expected), `tab ${index} (user ${userId}): every accepted follow, once`)
  }
  const history = await (await fetch(`${c.url}/api/notifications?limit=100`, { headers: { authorization: `Bearer ${tokens.get('1')!}` } })).json() as { items: Array<{ id: string }> }
  t.same(new Set(history.items.map(({ id }) => id)), new Set(accepted.get('1')), 'any gateway reads the one shared history')
  for (const { client } of tabs) t.equal(client.queued, 0, 'nothing more arrived: no duplicate')
})

async function ready (gateway: Gateway): Promise<void> {
  const deadline = Date.now() + BOUND_MS
  while (Date.now() < deadline) {
    if ((await fetch(`${gateway.url}/readyz`)).status === 200) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`gateway ${gateway.url} not ready within ${BOUND_MS} ms`)
}

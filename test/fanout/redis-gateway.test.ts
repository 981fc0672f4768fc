// The app wired with REDIS_URL (Kafka faked): frames cross gateways, /readyz watches Redis, and
// closing the app closes its Redis connections.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { FeedClient, signIn, type NotificationFrame } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

const AUTH_SECRET = 'a-secret-of-at-least-thirty-two-characters'

async function gateway (t: Test, redis: TestRedis): Promise<Gateway> {
  return await startGateway(t, { bus: new FakeBus(), listen: false, env: { REDIS_URL: redis.url, AUTH_SECRET } })
}

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('a follow consumed by one gateway reaches the recipient\'s socket on the other, and so does a read mark', async (t) => {
    const a = await gateway(t, redis)
    const b = await gateway(t, redis)
    const bruno = await signIn(b.app, '2')
    const emmaOnA = await signIn(a.app, '1')
    const tab = await FeedClient.inject(t, b.app, `/ws?token=${bruno}`)
    t.match(await tab.next(), { type: 'ready', seq: 0 })
    await eventually('b subscribed', async () => b.services.fanout.unreadyReasons(), (reasons) => reasons.length === 0)
    const followed = await a.app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${emmaOnA}` }, payload: { followeeId: '2' } })
    t.equal(followed.statusCode, 202)
    const frame = await tab.next() as Partial<NotificationFrame>
    t.match(frame, { type: 'notification', seq: 1, unread: 1 }, 'consumed and published by A, pushed by B')
    t.equal(frame.notification?.id, followed.json<{ notification: { id: string } }>().notification.id)
    // The inboxes are the gateways' own here (SQLite): a token of B reads on A only because AUTH_SECRET is shared.
    const read = await a.app.inject({ method: 'POST', url: '/api/notifications/read', headers: { authorization: `Bearer ${bruno}` }, payload: { ids: [frame.notification?.id] } })
    t.equal(read.statusCode, 200)
    const { unread, rev } = read.json<{ unread: number, rev: number }>()
    t.match(await tab.next(), { type: 'state', rev, unread, changes: [{ op: 'read', ids: [frame.notification?.id] }] }, 'the state frame of a read on A')
    t.same(await tab.next(), { type: 'unread', unread, rev }, 'then its unread frame')
  })

  t.test('closing the app closes its Redis connections', async (t) => {
    const client = new Redis(redis.url)
    t.teardown(() => client.disconnect())
    const ours = async (): Promise<number> => (await client.client('LIST') as string).split('\n').filter((line) => line.includes('name=kafka-notify:')).length
    const before = await ours()
    const a = await gateway(t, redis)
    await eventually('connected', ours, (count) => count === before + 3)
    await a.close()
    t.equal(await eventually('closed', ours, (count) => count === before), before, 'publisher, subscriber and commands connection are gone')
  })

  // Last: it stops the file's server.
  t.test('/readyz names a Redis connection that is down, and is ready again once it is back', async (t) => {
    const a = await gateway(t, redis)
    const ready = async (): Promise<{ statusCode: number, reasons: string[] }> => {
      const response = await a.app.inject({ method: 'GET', url: '/readyz' })
      return { statusCode: response.statusCode, reasons: response.json<{ reasons?: string[] }>().reasons ?? [] }
    }
    t.same(await eventually('ready', ready, ({ statusCode }) => statusCode === 200), { statusCode: 200, reasons: [] })
    await redis.stop()
    const down = await eventually('not ready', ready, ({ reasons }) => reasons.length === 2)
    t.equal(down.statusCode, 503)
    t.match(down.reasons, [/^Redis subscriber not connected/, /^Redis publisher not connected/])
    await redis.start()
    t.equal((await eventually('ready again', ready, ({ statusCode }) => statusCode === 200)).statusCode, 200)
  })
}

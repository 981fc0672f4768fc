// Idempotency-Keys shared through a real Redis: each RedisIdempotency here stands for one gateway.
import { Redis } from 'ioredis'
import t from 'tap'
import { KEY_PREFIX, RedisIdempotency } from '../../server/idempotency/redis.js'
import { IdempotencyUnavailableError, type KeyedAttempt } from '../../server/idempotency/types.js'
import { followNotification, type Notification } from '../../server/notification.js'
import { eventually } from '../helpers/eventually.js'
import { startRedis } from '../helpers/redis.js'

const TTL_MS = 60_000
const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const lena = { id: '3', name: 'Lena' }

/** Publishes that resolve or reject when told, and the notifications they were given. */
class Publishes {
  readonly sent: Notification[] = []
  readonly #settle: Array<{ resolve: () => void, reject: (error: Error) => void }> = []
  readonly publish = async (notification: Notification): Promise<void> => {
    this.sent.push(notification)
    await new Promise<void>((resolve, reject) => this.#settle.push({ resolve, reject }))
  }

  resolve (): void { this.#settle.shift()?.resolve() }
  reject (): void { this.#settle.shift()?.reject(new Error('broker down')) }
}

const redis = await startRedis(t)
if (redis !== undefined) {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {}) // the last test stops the server
  t.teardown(() => client.disconnect())
  const gateway = (): RedisIdempotency => new RedisIdempotency(client, { ttlMs: TTL_MS })
  let keys = 0
  const newKey = (): string => `key-${++keys}`
  const follow = async (idempotency: RedisIdempotency, key: string, publishes: Publishes, followee = bruno): Promise<KeyedAttempt<Notification>> =>
    await idempotency.run(emma.id, key, followee.id, () => followNotification(emma, followee), publishes.publish)

  t.test('a retry on another gateway gets the first answer, and nothing is published again', async (t) => {
    const [a, b, publishes, key] = [gateway(), gateway(), new Publishes(), newKey()]
    const first = await follow(a, key, publishes)
    t.equal(first.kind, 'new')
    publishes.resolve()
    await (first as { publishing: Promise<void> }).publishing
    await t.resolveMatch(eventuallyStored(key), { state: 'accepted' })
    const retry = await follow(b, key, publishes)
    t.equal(retry.kind, 'duplicate')
    t.same((retry as { value: Notification }).value, (first as { value: Notification }).value, 'the same notification, id and time')
    t.equal(publishes.sent.length, 1, 'published once')
  })

  t.test('a key used for another follow is a conflict on every gateway', async (t) => {
    const [a, b, publishes, key] = [gateway(), gateway(), new Publishes(), newKey()]
    await follow(a, key, publishes)
    t.equal((await follow(a, key, publishes, lena)).kind, 'conflict')
    t.equal((await follow(b, key, publishes, lena)).kind, 'conflict')
    t.equal(publishes.sent.length, 1)
    publishes.resolve()
  })

  t.test('after a failed first attempt, a retry elsewhere publishes the same notification again', async (t) => {
    const [a, b, publishes, key] = [gateway(), gateway(), new Publishes(), newKey()]
    const first = await follow(a, key, publishes) as { value: Notification, publishing: Promise<void> }
    publishes.reject()
    await t.rejects(first.publishing)
    await t.resolveMatch(eventuallyStored(key), { state: 'failed' })
    const retry = await follow(b, key, publishes)
    t.equal(retry.kind, 'retry')
    t.equal(publishes.sent.length, 2)
    t.equal(publishes.sent[1]!.id, first.value.id, 'same id: the inbox stores it once')
    publishes.resolve()
  })

  t.test('while the first attempt is open: a retry on its gateway waits for it; on another gateway it publishes the same notification', async (t) => {
    const [a, b, publishes, key] = [gateway(), gateway(), new Publishes(), newKey()]
    const first = await follow(a, key, publishes) as { value: Notification }
    const here = await follow(a, key, publishes)
    t.equal(here.kind, 'duplicate')
    t.equal(publishes.sent.length, 1, 'the gateway of the open attempt does not publish again')
    const there = await follow(b, key, publishes)
    t.equal(there.kind, 'retry')
    t.equal(publishes.sent.length, 2)
    t.equal(publishes.sent[1]!.id, first.value.id)
    publishes.resolve()
    publishes.resolve()
  })

  t.test('a key is kept for the TTL, then Redis expires it', async (t) => {
    const [a, publishes, key] = [gateway(), new Publishes(), newKey()]
    await follow(a, key, publishes)
    const ttl = await client.pttl(`${KEY_PREFIX}${emma.id}:${key}`)
    t.ok(ttl > TTL_MS - 5000 && ttl <= TTL_MS, `PTTL ${ttl} ms`)
    publishes.resolve()
  })

  t.test('a key stored before values were generic (a follow\'s `notification`) is read as its value', async (t) => {
    const [a, publishes, key] = [gateway(), new Publishes(), newKey()]
    const notification = followNotification(emma, bruno)
    await client.set(`${KEY_PREFIX}${emma.id}:${key}`, JSON.stringify({ fingerprint: bruno.id, notification, state: 'accepted' }), 'PX', TTL_MS)
    const retry = await follow(a, key, publishes)
    t.equal(retry.kind, 'duplicate')
    t.same((retry as { value: Notification }).value, notification)
    t.equal(publishes.sent.length, 0)
  })

  // Last: it stops the file's server.
  t.test('while Redis is down a keyed follow is refused and nothing is published; once it is back, keys work again', async (t) => {
    const [a, publishes] = [gateway(), new Publishes()]
    await redis.stop()
    await t.rejects(follow(a, newKey(), publishes), IdempotencyUnavailableError)
    t.equal(publishes.sent.length, 0)
    await redis.start()
    const key = newKey()
    // Refused (rejected) until ioredis has reconnected.
    const attempt = await eventually('a keyed follow answered', () => follow(a, key, publishes).catch(() => undefined), (answered) => answered !== undefined, { everyMs: 100 })
    t.equal(attempt?.kind, 'new')
    publishes.resolve()
  })

  /** The stored state, once the settle (a write the publisher does not wait for) has landed. */
  async function eventuallyStored (key: string): Promise<{ state: string }> {
    const stored = async (): Promise<{ state: string }> => JSON.parse(await client.get(`${KEY_PREFIX}${emma.id}:${key}`) ?? '{}') as { state: string }
    return await eventually(`${key} settled`, stored, ({ state }) => state !== 'publishing')
  }
}

// Two gateways on one Redis (Kafka faked: what is shared here is Redis state, not records): an
// Idempotency-Key and the rate limits count across gateways; while Redis is down a keyed follow
// is refused with 503 and a follow without key still goes through.
import t, { type Test } from 'tap'
import { eventually } from '../helpers/eventually.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

const AUTH_SECRET = 'a-secret-of-at-least-thirty-two-characters'
const PER_USER = 4

interface Pair { a: Gateway, b: Gateway, busA: FakeBus, busB: FakeBus, token: string }

async function pair (t: Test, redis: TestRedis, env: Record<string, string> = {}): Promise<Pair> {
  const [busA, busB] = [new FakeBus(), new FakeBus()]
  const start = async (bus: FakeBus): Promise<Gateway> => await startGateway(t, { bus, listen: false, env: { REDIS_URL: redis.url, AUTH_SECRET, ...env } })
  const [a, b] = [await start(busA), await start(busB)]
  const token = (await a.app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })).json<{ token: string }>().token
  return { a, b, busA, busB, token }
}

async function follow (gateway: Gateway, token: string, followeeId: string, key?: string): Promise<{ statusCode: number, headers: Record<string, unknown>, body: { notification?: { id: string }, code?: string, message?: string } }> {
  const response = await gateway.app.inject({
    method: 'POST',
    url: '/api/follows',
    headers: { authorization: `Bearer ${token}`, ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload: { followeeId }
  })
  return { statusCode: response.statusCode, headers: response.headers, body: response.json() }
}

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('a retry with the same Idempotency-Key on another gateway gets the first answer; nothing is published twice', async (t) => {
    const { a, b, busA, busB, token } = await pair(t, redis)
    const first = await follow(a, token, '2', 'k-1')
    t.equal(first.statusCode, 202)
    const retry = await follow(b, token, '2', 'k-1')
    t.equal(retry.statusCode, 202)
    t.equal(retry.headers['idempotent-replayed'], 'true')
    t.same(retry.body, first.body, 'the same notification')
    t.equal(busA.published.length + busB.published.length, 1, 'published once, by the first gateway')
    const conflict = await follow(b, token, '3', 'k-1')
    t.equal(conflict.statusCode, 422)
    t.equal(conflict.body.code, 'IDEMPOTENCY_CONFLICT')
  })

  t.test('the per-user rate limit counts the follows of every gateway', async (t) => {
    const { a, b, token } = await pair(t, redis, { RATE_LIMIT_PER_USER: String(PER_USER) })
    const statuses: number[] = []
    for (let i = 0; i < PER_USER + 1; i++) statuses.push((await follow(i % 2 === 0 ? a : b, token, '2')).statusCode)
    t.same(statuses, [202, 202, 202, 202, 429], `${PER_USER} a minute over both gateways, then 429`)
    const refused = await follow(a, token, '2')
    t.equal(refused.body.code, 'RATE_LIMITED')
    t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After')
  })

  // Last: it stops the file's server.
  t.test('while Redis is down: a keyed follow gets 503 REDIS_UNAVAILABLE and publishes nothing, a follow without key gets 202', async (t) => {
    const { a, busA, token } = await pair(t, redis, { RATE_LIMIT_PER_USER: String(PER_USER) })
    await redis.stop()
    const keyed = await follow(a, token, '2', 'k-down')
    t.equal(keyed.statusCode, 503)
    t.equal(keyed.body.code, 'REDIS_UNAVAILABLE')
    t.match(keyed.body.message, /Idempotency-Key/)
    t.notMatch(keyed.body.message, /ECONNREFUSED|127\.0\.0\.1|Connection/, 'in its own words: what ioredis said is in the log')
    t.equal(keyed.headers['retry-after'], '1')
    t.equal(busA.published.length, 0, 'nothing published')
    const plain = await follow(a, token, '2')
    t.equal(plain.statusCode, 202, 'the rate limit is skipped, not failed')
    await redis.start()
    const again = await eventually('Redis back', () => follow(a, token, '2', 'k-down'), ({ statusCode }) => statusCode !== 503, { everyMs: 100 })
    t.equal(again.statusCode, 202, 'the same key goes through once Redis is back')
    t.equal(busA.published.length, 2)
  })
}

import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { MemoryBudget, RedisBudget, WINDOW_MS, type ServiceBudget } from '../../server/routes/service-budget.js'
import { startRedis } from '../helpers/redis.js'

/** What every budget does, whoever keeps the counts. */
async function takesWholeRequestsOnly (t: Test, budget: ServiceBudget, key: string): Promise<void> {
  t.same(await budget.take(key, 3, 5), { allowed: true }, '3 of 5')
  const refused = await budget.take(key, 3, 5)
  t.equal(refused.allowed, false, '3 more do not fit')
  t.ok(!refused.allowed && refused.retryAfterMs > 0 && refused.retryAfterMs <= WINDOW_MS, 'until the window ends')
  t.same(await budget.take(key, 2, 5), { allowed: true }, 'a refused request took nothing: 2 still fit')
  t.equal((await budget.take(key, 1, 5)).allowed, false, 'and then the budget is spent')
  t.same(await budget.take(`${key}-other`, 5, 5), { allowed: true }, 'another key has its own')
}

t.test('in memory: whole requests only, per key, in one-minute windows', async (t) => {
  let now = 1_000_000
  const budget = new MemoryBudget(() => now)
  await takesWholeRequestsOnly(t, budget, 'comments')
  now += WINDOW_MS - 1
  t.equal((await budget.take('comments', 1, 5)).allowed, false, 'still the same window a millisecond before its end')
  now += 1
  t.same(await budget.take('comments', 5, 5), { allowed: true }, 'a new window, a full budget')
})

const redis = await startRedis(t)
if (redis !== undefined) {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {}) // the last test stops the server
  t.teardown(() => client.disconnect())

  t.test('in Redis: the same rules, one count for every gateway, and the window expires there', async (t) => {
    await takesWholeRequestsOnly(t, new RedisBudget(client), 'comments')
    const [a, b] = [new RedisBudget(client), new RedisBudget(client)]
    const takes = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).take('billing', 1, 6)))
    t.equal(takes.filter(({ allowed }) => allowed).length, 6, 'ten takes at once on two gateways: exactly the budget passes')
    const ttl = await client.pttl('notify:service-budget:billing')
    t.ok(ttl > 0 && ttl <= WINDOW_MS, `the window's key expires with it (${ttl} ms)`)
  })

  // Last: it stops the file's server.
  t.test('while Redis does not answer, the budget lets work through', async (t) => {
    await redis.stop()
    t.same(await new RedisBudget(client).take('comments', 1000, 5), { allowed: true })
  })
}

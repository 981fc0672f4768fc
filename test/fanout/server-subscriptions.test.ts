import { Redis } from 'ioredis'
import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { startRedis } from '../helpers/redis.js'
import { redisFanoutNode } from '../helpers/redis-fanout-node.js'
import { notification } from './contract.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  // The subscriber subscribed again only on a new connection, so one refusal
  // left it "resubscribing" for as long as the connection stayed up, its users never caught up.
  t.test('a resubscribe Redis refuses while the connection stays up is tried again, with backoff, until it holds; then the users are caught up', async (t) => {
    const admin = new Redis(redis.url)
    t.teardown(async () => {
      await admin.call('ACL', 'SETUSER', 'default', 'allchannels')
      admin.disconnect()
    })
    const a = await redisFanoutNode(t, redis.url)
    await a.watch('1')
    await a.watch('2')
    const before = a.receiver.resubscriptions.length
    // Revoking the channels drops the connections subscribed to them; the new one is refused every SSUBSCRIBE.
    await admin.call('ACL', 'SETUSER', 'default', 'resetchannels')
    await eventually('refused, and saying so', () => a.fanout.unreadyReasons().some(({ reason }) => reason === 'Redis subscriber resubscribing'))
    t.equal(a.receiver.resubscriptions.length, before, 'nobody reported while refused')

    await admin.call('ACL', 'SETUSER', 'default', 'allchannels')
    await a.receiver.until('resubscribed', () => a.receiver.resubscriptions.slice(before).flat().includes('2'))
    t.same(a.receiver.resubscriptions.slice(before).flat().sort(), ['1', '2'], 'both watched users, once each, reported to be caught up')
    await eventually('ready', () => a.fanout.unreadyReasons().length === 0)
    await a.fanout.publish([notification('1', 1)])
    t.same(await a.receiver.deliveries(1), [notification('1', 1)], 'and frames flow again')
  })
}

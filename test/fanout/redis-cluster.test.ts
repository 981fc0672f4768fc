// The Redis fan-out, Idempotency-Keys and rate limits on a real Redis Cluster of three masters
// (REDIS_CLUSTER=1): the fan-out contract, users on every shard, a shard restarted under watched
// users, and the two command users of the cluster client.
import calculateSlot from 'cluster-key-slot'
import { mock } from 'node:test'
import { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import { channelOf } from '../../server/fanout/subscriptions.js'
import { RedisIdempotency } from '../../server/idempotency/redis.js'
import { followNotification, type Notification } from '../../server/notification.js'
import { connectCluster } from '../../server/redis-connection.js'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway } from '../helpers/gateway.js'
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis.js'
import { quiet } from '../helpers/quiet-log.js'
import { eventually } from '../helpers/eventually.js'
import { redisFanoutNode } from '../helpers/redis-fanout-node.js'
import { fanoutContract, notification, perUser } from './contract.js'

const AUTH_SECRET = 'a-secret-of-at-least-thirty-two-characters'

const cluster = await startRedisCluster(t)
if (cluster !== undefined) {
  // Users on different shards come on different connections: only each user's order is kept.
  fanoutContract(t, async (t) => await redisFanoutNode(t, cluster.url, true), { orderedAcrossUsers: false })
  clusterOnly(cluster)
}

/** A cluster client of the test's own, ready, to look at slots and keys. */
async function inspector (t: Test, cluster: TestRedisCluster): Promise<Cluster> {
  const client = connectCluster(cluster.url, 'inspector', quiet)
  t.teardown(() => client.disconnect())
  await eventually('inspector ready', () => client.status === 'ready')
  return client
}

/** For each master (by port), a user id whose channel hashes to a slot it owns, checked with CLUSTER KEYSLOT. */
async function usersPerShard (t: Test, client: Cluster, ports: number[]): Promise<string[]> {
  const found = new Map<number, string>()
  for (let i = 0; i < 1000 && found.size < ports.length; i++) {
    const userId = `user-${i}`
    const port = Number(client.slots[calculateSlot(channelOf(userId))]?.[0]?.split(':')[1])
    if (!found.has(port)) found.set(port, userId)
  }
  const users = ports.map((port) => found.get(port)!)
  for (const userId of users) {
    t.equal(await client.call('CLUSTER', 'KEYSLOT', channelOf(userId)), calculateSlot(channelOf(userId)), `${userId}: the server hashes its channel to the same slot`)
  }
  return users
}

function clusterOnly (cluster: TestRedisCluster): void {
  t.test('two gateways on one cluster, users on all three shards: frames cross only to the gateway watching them', async (t) => {
    const users = await usersPerShard(t, await inspector(t, cluster), cluster.ports)
    t.equal(new Set(users).size, 3, `one user per shard: ${users.join(', ')}`)
    const [one, two, three] = users as [string, string, string]
    const a = await redisFanoutNode(t, cluster.url, true)
    const b = await redisFanoutNode(t, cluster.url, true)
    await a.watch(one)
    await b.watch(two)
    await b.watch(three)
    const batch = [notification(one, 1), notification(two, 1), notification(three, 1), notification('nobody', 1), notification(two, 2), notification(three, 2), notification(one, 2)]
    const pipeline = mock.method(Cluster.prototype, 'pipeline')
    t.teardown(() => pipeline.mock.restore())
    await a.fanout.publish(batch)
    pipeline.mock.restore()
    t.ok(pipeline.mock.callCount() <= 3, `the batch went out in one pipeline per node (${pipeline.mock.callCount()})`)
    t.same(perUser(await b.receiver.deliveries(4)), perUser([notification(two, 1), notification(two, 2), notification(three, 1), notification(three, 2)]), 'b gets its two users\' frames, each user\'s in order')
    t.same(await a.receiver.deliveries(2), [notification(one, 1), notification(one, 2)], 'a gets its own user\'s frames back')
    await b.watch(one)
    await b.fanout.publish([notification(one, 3)])
    t.same((await a.receiver.deliveries(3))[2], notification(one, 3))
    t.same((await b.receiver.deliveries(5))[4], notification(one, 3), 'a user watched on both gets it on both')
    t.equal(a.receiver.delivered.length, 3, 'nothing of b\'s users reached a')
    t.equal(b.receiver.delivered.length, 5)
  })

  t.test('an Idempotency-Key retry on another gateway gets the first answer from the cluster', async (t) => {
    const client = await inspector(t, cluster)
    const [a, b] = [new RedisIdempotency(client, { ttlMs: 60_000 }), new RedisIdempotency(client, { ttlMs: 60_000 })]
    const emma = { id: '1', name: 'Emma' }
    const bruno = { id: '2', name: 'Bruno' }
    const published: Notification[] = []
    const publish = async (notification: Notification): Promise<void> => { published.push(notification) }
    const keys = ['k-1', 'k-2', 'k-3', 'k-4', 'k-5', 'k-6'] // on several slots
    for (const key of keys) {
      const first = await a.run(emma.id, key, bruno.id, () => followNotification(emma, bruno), publish)
      t.equal(first.kind, 'new', key)
      await (first as { publishing: Promise<void> }).publishing
      await eventually(`${key} accepted`, async () => (await client.get(`notify:idempotency:1:${key}`))?.includes('"accepted"') === true)
      const retry = await b.run(emma.id, key, bruno.id, () => followNotification(emma, bruno), publish)
      t.equal(retry.kind, 'duplicate', `${key}: a duplicate on the other gateway gets the first answer`)
      t.same((retry as { value: Notification }).value, (first as { value: Notification }).value)
      t.equal((await b.run(emma.id, key, '3', () => followNotification(emma, { id: '3', name: 'Lena' }), publish)).kind, 'conflict')
    }
    t.equal(published.length, keys.length, 'each published once')
  })

  t.test('the per-user rate limit counts the follows of two gateways in the cluster (REDIS_CLUSTER=1)', async (t) => {
    const env = { REDIS_URL: cluster.url, REDIS_CLUSTER: '1', AUTH_SECRET, RATE_LIMIT_PER_USER: '4' }
    const [a, b] = await Promise.all([1, 2].map(async () => await startGateway(t, { bus: new FakeBus(), listen: false, env })))
    // The commands connection fails a command at once until the cluster is ready (it never queues).
    await eventually('both connected', () => a!.services.redis?.status === 'ready' && b!.services.redis?.status === 'ready')
    const token = (await a!.app.inject({ method: 'POST', url: '/api/sessions', payload: { userId: '1' } })).json<{ token: string }>().token
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const response = await [a!, b!][i % 2]!.app.inject({ method: 'POST', url: '/api/follows', headers: { authorization: `Bearer ${token}` }, payload: { followeeId: '2' } })
      statuses.push(response.statusCode)
    }
    t.same(statuses, [202, 202, 202, 202, 429], '4 a minute over both gateways, then 429')
  })

  // Last: it restarts a node of the file's cluster.
  t.test('a shard restarted: unready naming it, then its watched users (only they) are resubscribed and reported, and frames flow again', async (t) => {
    const users = await usersPerShard(t, await inspector(t, cluster), cluster.ports)
    const a = await redisFanoutNode(t, cluster.url, true)
    const b = await redisFanoutNode(t, cluster.url, true)
    for (const userId of users) await a.watch(userId)
    const restarted = users[1]!
    const reported = a.receiver.resubscriptions.length
    await cluster.stopNode(1)
    await eventually('unready', () => a.fanout.unreadyReasons().length > 0)
    t.same(a.fanout.unreadyReasons(), [{ reason: 'Redis shard subscriber not connected or resubscribing', detail: `127.0.0.1:${cluster.ports[1]!}: 1 watched users` }], 'unready, naming the shard (for the log)')
    await cluster.startNode(1)
    await a.receiver.until('resubscribed', () => a.receiver.resubscriptions.length > reported)
    await eventually('ready again', () => a.fanout.unreadyReasons().length === 0)
    t.same(a.receiver.resubscriptions.slice(reported), [[restarted]], 'the restarted shard\'s user, reported once its channel is subscribed again')
    // The publisher finds the node again on its own; until then a publish to it may be lost.
    let seq = 10
    await eventually('a frame on the restarted shard', async () => {
      if (a.receiver.delivered.some((message) => message.userId === restarted)) return true
      await b.fanout.publish([notification(restarted, seq++)])
      return false
    }, Boolean, { everyMs: 200 })
    t.ok(a.receiver.delivered.some((message) => message.userId === restarted), 'frames flow again on the restarted shard')
    const others = users.filter((userId) => userId !== restarted)
    await b.fanout.publish(others.map((userId) => notification(userId, 100)))
    await a.receiver.until('the other shards\' frames', () => others.every((userId) => a.receiver.delivered.some((message) => message.userId === userId && message.seq === 100)))
    t.pass('and on the other shards')
  })
}

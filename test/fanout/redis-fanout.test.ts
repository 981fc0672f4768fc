import { mock } from 'node:test'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { CHANNEL_PREFIX, decodePayload, encodePayload, RedisFanout } from '../../server/fanout/redis-fanout.js'
import type { FanoutMessage } from '../../server/fanout/types.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { eventually } from '../helpers/eventually.js'
import { quiet } from '../helpers/quiet-log.js'
import { redisFanoutNode } from '../helpers/redis-fanout-node.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { fanoutContract, notification, RecordingReceiver, unread } from './contract.js'

const redis = await startRedis(t)
t.test('the payload is `<seq> <timestamp> <rev> <n|s>\\n<frame>` (or `\\n<frame>`), read back without JSON', async (t) => {
  const frame = notification('1', 12)
  t.equal(encodePayload(frame), `12 ${frame.timestamp!}  n\n${frame.text}`)
  t.equal(encodePayload(unread('1', 3)), '\n{"type":"unread","unread":3}')
  t.equal(encodePayload({ userId: '1', text: 'x', seq: 5 }), '5   n\nx', 'a seq without a timestamp or rev')
  const state = { userId: '1', text: 'x', seq: 5, rev: 7, state: true } as const
  t.equal(encodePayload(state), '5  7 s\nx', 'a state change: the feed\'s seq then, its rev')
  t.same(decodePayload('1', encodePayload(frame)), frame)
  t.same(decodePayload('1', encodePayload(state)), state)
  t.same(decodePayload('1', encodePayload({ userId: '1', text: 'x', seq: 0, rev: 1, state: true })), { userId: '1', text: 'x', seq: 0, rev: 1, state: true }, 'a state change before any notification')
  t.same(decodePayload('1', encodePayload({ userId: '1', text: 'x', seq: 5, rev: 2, timestamp: 9 })), { userId: '1', text: 'x', seq: 5, rev: 2, timestamp: 9 })
  t.same(decodePayload('1', '5 \nx'), { userId: '1', text: 'x', seq: 5 }, 'a payload of before revs')
  t.same(decodePayload('1', '5\nx\ny'), { userId: '1', text: 'x\ny', seq: 5 }, 'only the first newline ends the header')
  t.same(decodePayload('1', '\n{"type":"unread","unread":3}'), unread('1', 3))
  const parse = mock.method(JSON, 'parse')
  t.teardown(() => parse.mock.restore())
  decodePayload('1', encodePayload(frame))
  t.equal(parse.mock.callCount(), 0, 'the frame is not parsed')
  for (const bad of ['no header line', 'x 1\ntext', '0 1\ntext', '-3\ntext', '1.5\ntext']) {
    t.equal(decodePayload('1', bad), undefined, JSON.stringify(bad))
  }
})

if (redis !== undefined) {
  fanoutContract(t, async (t) => await redisFanoutNode(t, redis.url))
  redisOnly(redis)
}

/** A plain client of the test server, to look at what the fan-out did there. */
function inspector (t: Test, redis: TestRedis): Redis {
  const client = new Redis(redis.url, { lazyConnect: true })
  t.teardown(() => client.disconnect())
  return client
}

async function subscribers (client: Redis, userId: string): Promise<number> {
  const [, count] = await client.call('PUBSUB', 'SHARDNUMSUB', CHANNEL_PREFIX + userId) as [string, number]
  return count
}

function redisOnly (redis: TestRedis): void {
  t.test('two gateways on one Redis: a publish on one reaches the other only for users it watches', async (t) => {
    const a = await redisFanoutNode(t, redis.url)
    const b = await redisFanoutNode(t, redis.url)
    await a.watch('1')
    await b.watch('2')
    const batch = [notification('1', 1), notification('2', 1), notification('3', 1), notification('2', 2)]
    await a.fanout.publish(batch)
    t.same(await b.receiver.deliveries(2), [notification('2', 1), notification('2', 2)], 'the other gateway gets its user\'s frames, in order')
    t.same(await a.receiver.deliveries(1), [notification('1', 1)], 'the publishing gateway gets its own user\'s frame back')
    await b.watch('1')
    await b.fanout.publish([notification('1', 2)])
    t.same((await a.receiver.deliveries(2))[1], notification('1', 2))
    t.same((await b.receiver.deliveries(3))[2], notification('1', 2), 'a user watched on both gets it on both')
    t.equal(b.receiver.delivered.length, 3, 'user 3 reached nobody, and 1 reached b only once watched there')
  })

  t.test('a user\'s channel is subscribed from the first watch to the unwatch, on that gateway only', async (t) => {
    const a = await redisFanoutNode(t, redis.url)
    const client = inspector(t, redis)
    t.equal(await subscribers(client, 'lena'), 0)
    await a.watch('lena')
    t.equal(await subscribers(client, 'lena'), 1, 'subscribed once watched')
    a.fanout.unwatch('lena')
    // The next subscribe on the same connection is confirmed only after the unsubscribe before it.
    await a.watch('rick')
    t.equal(await subscribers(client, 'lena'), 0, 'unsubscribed once unwatched')
    t.equal(await subscribers(client, 'rick'), 1)
  })

  t.test('a published batch is one pipeline: one round trip', async (t) => {
    const a = await redisFanoutNode(t, redis.url)
    await a.watch('1')
    const pipeline = mock.method(Redis.prototype, 'pipeline')
    t.teardown(() => pipeline.mock.restore())
    await a.fanout.publish([notification('1', 1), notification('1', 2), unread('1', 2)])
    t.equal(pipeline.mock.callCount(), 1)
    t.equal((await a.receiver.deliveries(3)).length, 3)
  })

  t.test('frames that arrive together are delivered in one corked call', async (t) => {
    const a = await redisFanoutNode(t, redis.url)
    await a.watch('1')
    const before = a.receiver.corkings
    await a.fanout.publish(Array.from({ length: 20 }, (_, i) => notification('1', i + 1)))
    await a.receiver.deliveries(20)
    t.ok(a.receiver.corkings - before < 20, `20 frames in ${a.receiver.corkings - before} corked calls`)
  })

  // The publisher's queue was bounded by time only (the command timeout).
  t.test('publishes waiting for a silent Redis are bounded in bytes: past the bound a batch is dropped at once, counted, and said lost', async (t) => {
    const url = new URL(redis.url)
    const proxy = await startTcpProxy(t, { host: url.hostname, port: Number(url.port) })
    url.port = String(proxy.port)
    const lost: Array<[string, number]> = []
    const fanout = new RedisFanout({ url: url.href, receiver: new RecordingReceiver(), log: quiet, observer: { lost: (why, frames) => lost.push([why, frames]), linkReset () {} } })
    t.teardown(() => fanout.close())
    await eventually('connected', () => fanout.unreadyReasons().length === 0)
    t.equal(await fanout.publish([notification('1', 1)]), true, 'handed on while Redis answers')

    proxy.silence()
    const big = (seq: number): FanoutMessage => notification('1', seq, 'x'.repeat(12 * 1024 * 1024))
    const waiting = fanout.publish([big(2)]) // alone, however large: nothing else waits
    t.equal(await fanout.publish([big(3), notification('1', 4)]), false, 'past 16 MiB waiting: dropped, not queued')
    t.same(lost, [['queue_full', 2]], 'and counted')
    t.equal(await waiting, false, 'the one that waited is lost too, once Redis did not answer in time')
    t.same(lost, [['queue_full', 2], ['failed', 1]])
  })

  // Last: it restarts the file's server.
  t.test('when Redis restarts: unready while it is down, then every watched user is resubscribed and reported, and frames flow again', async (t) => {
    const a = await redisFanoutNode(t, redis.url)
    const b = await redisFanoutNode(t, redis.url)
    await a.watch('1')
    await a.watch('2')
    await b.watch('3')
    t.same(a.fanout.unreadyReasons(), [])
    const resubscribed = a.receiver.resubscriptions.length
    await redis.stop()
    await eventually('unready', () => a.fanout.unreadyReasons().length === 2)
    t.match(a.fanout.unreadyReasons(), [{ reason: 'Redis subscriber not connected' }, { reason: 'Redis publisher not connected' }], 'unready, saying which connection is down')
    const whileDown = b.fanout.publish([notification('2', 4)])
    await redis.start()
    await a.receiver.until('resubscribed', () => a.receiver.resubscriptions.length > resubscribed)
    t.same(a.receiver.resubscriptions.slice(resubscribed), [['1', '2']], 'both watched users, reported once their channels are subscribed again')
    t.same(a.fanout.unreadyReasons().filter(({ reason }) => reason.includes('subscriber')), [], 'the subscriber is ready')
    await eventually('b ready again', () => b.fanout.unreadyReasons().length === 0)
    await t.resolves(whileDown, 'a publish made while Redis was down settled (sent late, or lost) without rejecting')
    await b.fanout.publish([notification('2', 5), notification('3', 5)])
    await a.receiver.until('the frame after the restart', () => a.receiver.delivered.some((message) => message.seq === 5))
    t.same(a.receiver.delivered.filter((message) => message.seq === 5), [notification('2', 5)], 'frames flow again')
  })
}

// Two gateways (each a hub, a feed relay and a Redis fan-out) share one inbox, as they share
// PostgreSQL in production; gateway A consumes. Redis restarts mid-stream: what was published
// meanwhile is lost, and every tab is caught up from the inbox, nothing missed, nothing doubled.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { RedisFanout } from '../../server/fanout/redis-fanout.js'
import { createIngest } from '../../server/feed/ingest.js'
import { TailRepair } from '../../server/feed/tail-repair.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import type { Inbox } from '../../server/inbox/types.js'
import type { ConsumedRecord } from '../../server/kafka/types.js'
import { followNotification } from '../../server/notification.js'
import { deliveryPath, type DeliveryPath } from '../helpers/delivery-path.js'
import type { FakeSocket } from '../helpers/fake-socket.js'
import { tempDir } from '../helpers/gateway.js'
import { quiet } from '../helpers/quiet-log.js'
import { consumedRecords } from '../helpers/records.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { eventually } from '../helpers/eventually.js'

const users: Record<string, { id: string, name: string }> = { 1: { id: '1', name: 'Emma' }, 2: { id: '2', name: 'Bruno' }, 3: { id: '3', name: 'Rick' } }

/** One gateway's delivery half, wired as services.ts wires it; `openTab` resolves once the tab is live and its user subscribed. */
function deliveryNode (t: Test, redis: TestRedis, inbox: Inbox): DeliveryPath<RedisFanout> & { openTab: (userId: string) => Promise<FakeSocket> } {
  const path = deliveryPath(t, { inbox, fanout: (receiver) => new RedisFanout({ url: redis.url, receiver, log: quiet }) })
  return {
    ...path,
    openTab: async (userId) => {
      const { socket } = await path.open(users[userId]!)
      await eventually('subscribed', () => path.fanout.unreadyReasons().length === 0)
      return socket
    }
  }
}

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('Redis restarts mid-stream: every tab on both gateways is resynced from the inbox, nothing missed, nothing doubled', async (t) => {
    const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 })
    t.teardown(() => inbox.close())
    const a = deliveryNode(t, redis, inbox)
    const b = deliveryNode(t, redis, inbox)
    let offset = 0
    /** What the consumer of gateway A does with a batch of `perUser` notifications for each user. */
    const tail = new TailRepair(inbox, a.fanout, { log: quiet })
    t.teardown(() => tail.close())
    const consume = createIngest(inbox, a.fanout, tail)
    const records = (perUser: number): ConsumedRecord[] => {
      const notifications = Array.from({ length: perUser }, () => ['1', '2', '3'].map((userId) => followNotification(users[userId === '3' ? '1' : '3']!, users[userId]!))).flat()
      const batch = consumedRecords(notifications, { firstOffset: offset })
      offset += batch.length
      return batch
    }

    const tabs: Array<[string, FakeSocket]> = [
      ['emma on A', await a.openTab('1')],
      ['emma on B', await b.openTab('1')],
      ['bruno on B', await b.openTab('2')],
      ['bruno on B, second tab', await b.openTab('2')],
      ['rick on A', await a.openTab('3')]
    ]
    const reached = async (seq: number): Promise<void> => {
      for (const [name, tab] of tabs) await tab.until(`${name} reached ${seq}`, () => tab.seqs.includes(seq), 10_000)
    }

    for (let batch = 0; batch < 3; batch++) await consume(records(2), [])
    await reached(6)

    await redis.stop()
    // Stored while Redis is down: their frames are queued by A's publisher (and may arrive after
    // the restart, or be lost with the subscriptions)…
    for (let batch = 0; batch < 2; batch++) await consume(records(2), [])
    // …and these were consumed by a gateway whose publishes were lost for certain.
    await inbox.append(records(3))
    await redis.start()

    await reached(13)
    await consume(records(2), [])
    await reached(15)
    const all = Array.from({ length: 15 }, (_, i) => i + 1)
    for (const [name, tab] of tabs) t.same(tab.seqs, all, `${name}: 1–15, in order, each once`)
  })
}

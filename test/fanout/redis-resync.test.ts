// Two gateways (each a hub, a feed relay and a Redis fan-out) share one inbox, as they share
// PostgreSQL in production; gateway A consumes. Redis restarts mid-stream: what was published
// meanwhile is lost, and every tab is caught up from the inbox, nothing missed, nothing doubled.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openFeed } from '../../server/catch-up.js'
import { createDeliveryHandler } from '../../server/delivery.js'
import { RedisFanout } from '../../server/fanout/redis-fanout.js'
import { FeedRelay } from '../../server/feed-relay.js'
import { Connection } from '../../server/hub/connection.js'
import { Hub } from '../../server/hub/hub.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import type { Inbox } from '../../server/inbox/types.js'
import type { ConsumedNotification } from '../../server/kafka/types.js'
import type { Logger } from '../../server/logger.js'
import { followNotification } from '../../server/notification.js'
import { FakeSocket } from '../helpers/fake-socket.js'
import { tempDir } from '../helpers/gateway.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

const BOUND = 1024 * 1024
const quiet: Logger = { error () {}, warn () {}, info () {}, debug () {}, child: () => quiet }
const users: Record<string, { id: string, name: string }> = { 1: { id: '1', name: 'Emma' }, 2: { id: '2', name: 'Bruno' }, 3: { id: '3', name: 'Rick' } }

/** A tab's socket: the seqs of its notification frames, and a way to wait for one. */
class Tab extends FakeSocket {
  #waiters: Array<() => void> = []

  override send (data: string, written?: (error?: Error) => void): void {
    super.send(data, written)
    for (const waiter of [...this.#waiters]) waiter()
  }

  get seqs (): number[] {
    return this.sent.map((text) => JSON.parse(text) as { type: string, seq: number }).filter(({ type }) => type === 'notification').map(({ seq }) => seq)
  }

  async reached (seq: number, name: string): Promise<void> {
    if (this.seqs.includes(seq)) return
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!this.seqs.includes(seq)) return
        clearTimeout(timer)
        this.#waiters = this.#waiters.filter((waiter) => waiter !== check)
        resolve()
      }
      const timer = setTimeout(() => reject(new Error(`${name} did not reach ${seq} within 10 s (has ${JSON.stringify(this.seqs)})`)), 10_000)
      this.#waiters.push(check)
    })
  }
}

/** One gateway's delivery half, wired as services.ts wires it: hub, feed relay, Redis fan-out. */
interface DeliveryNode {
  hub: Hub
  fanout: RedisFanout
  /** Opens a tab as /ws does, resolved once it is live. */
  open (userId: string): Promise<Tab>
}

function deliveryNode (t: Test, redis: TestRedis, inbox: Inbox): DeliveryNode {
  // The fan-out is made after the hub, which calls it only once a socket is added.
  const hub = new Hub({ heartbeatMs: 60_000, onUserOnline: (userId) => fanout.watch(userId), onUserOffline: (userId) => fanout.unwatch(userId) })
  t.teardown(() => hub.stop())
  const relay = new FeedRelay(hub, inbox, { maxBufferedBytes: BOUND, log: quiet })
  const fanout = new RedisFanout({ url: redis.url, receiver: relay, log: quiet })
  t.teardown(() => fanout.close())
  return {
    hub,
    fanout,
    open: async (userId) => {
      const socket = new Tab()
      const connection = new Connection(userId, socket, BOUND)
      connection.hold()
      hub.add(connection)
      await openFeed(connection, inbox, users[userId]!, undefined, BOUND)
      await eventually('subscribed', () => fanout.unreadyReasons().length === 0)
      return socket
    }
  }
}

async function eventually (what: string, done: () => boolean): Promise<void> {
  const until = Date.now() + 10_000
  while (!done()) {
    if (Date.now() > until) throw new Error(`not within 10 s: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
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
    const consume = createDeliveryHandler(inbox, a.fanout)
    const records = (perUser: number): ConsumedNotification[] => Array.from({ length: perUser }, () => ['1', '2', '3'].map((userId) => followNotification(users[userId === '3' ? '1' : '3']!, users[userId]!)).map((notification) => ({
      notification,
      json: JSON.stringify(notification),
      timestamp: Date.now(),
      topic: 't',
      partition: 0,
      offset: String(offset++)
    }))).flat()

    const tabs: Array<[string, Tab]> = [
      ['emma on A', await a.open('1')],
      ['emma on B', await b.open('1')],
      ['bruno on B', await b.open('2')],
      ['bruno on B, second tab', await b.open('2')],
      ['rick on A', await a.open('3')]
    ]
    const reached = async (seq: number): Promise<void> => { for (const [name, tab] of tabs) await tab.reached(seq, name) }

    for (let batch = 0; batch < 3; batch++) await consume(records(2))
    await reached(6)

    await redis.stop()
    // Stored while Redis is down: their frames are queued by A's publisher (and may arrive after
    // the restart, or be lost with the subscriptions)…
    for (let batch = 0; batch < 2; batch++) await consume(records(2))
    // …and these were consumed by a gateway whose publishes were lost for certain.
    await inbox.append(records(3))
    await redis.start()

    await reached(13)
    await consume(records(2))
    await reached(15)
    const all = Array.from({ length: 15 }, (_, i) => i + 1)
    for (const [name, tab] of tabs) t.same(tab.seqs, all, `${name}: 1–15, in order, each once`)
  })
}

import { join } from 'node:path'
import t from 'tap'
import { openFeed } from '../../server/feed/catch-up.js'
import { FeedRelay } from '../../server/feed/relay.js'
import type { FanoutMessage } from '../../server/fanout/types.js'
import { notificationFrame, unreadFrame } from '../../server/feed/frames.js'
import { encodeCursor } from '../../server/feed/cursor.js'
import { CloseCode } from '../../server/hub/close-codes.js'
import { Connection } from '../../server/hub/socket.js'
import { Hub } from '../../server/hub/hub.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import type { Inbox } from '../../server/inbox/types.js'
import type { Logger } from '../../server/logger.js'
import { followNotification } from '../../server/notification.js'
import { FakeSocket } from '../helpers/fake-socket.js'
import { tempDir, type TestContext } from '../helpers/gateway.js'
import { Waiters } from '../helpers/waiters.js'

const BOUND = 1024 * 1024
const users: Record<'1' | '2' | '3', { id: string, name: string }> = { 1: { id: '1', name: 'Emma' }, 2: { id: '2', name: 'Bruno' }, 3: { id: '3', name: 'Rick' } }
const quiet: Logger = { error () {}, warn () {}, info () {}, debug () {}, child: () => quiet }

interface Frame { type: string, seq?: number, notification?: { id: string }, unread?: number }

/** A socket a test can wait on: `until` resolves once the frames sent so far satisfy it. */
class TabSocket extends FakeSocket {
  readonly #waiters = new Waiters()

  override send (data: string, written?: (error?: Error) => void): void {
    super.send(data, written)
    this.#waiters.wake()
  }

  override close (code: number, reason: string): void {
    super.close(code, reason)
    this.#waiters.wake()
  }

  get frames (): Frame[] {
    return this.sent.map((text) => JSON.parse(text) as Frame)
  }

  /** The seqs of the notification frames sent, in order. */
  get seqs (): number[] {
    return this.frames.filter((frame) => frame.type === 'notification').map((frame) => frame.seq!)
  }

  async until (what: string, done: () => boolean): Promise<void> {
    await this.#waiters.until(() => `${what} (sent ${JSON.stringify(this.seqs)})`, done)
  }
}

type UserId = keyof typeof users

/** One gateway's delivery side: an inbox, a hub, and the relay between them. */
function gateway (t: TestContext, retention = { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 }): {
  inbox: SqliteInbox
  hub: Hub
  relay: FeedRelay
  delivered: Array<[number, number]>
  /** Stores notifications for `userId` as the consumer would; returns their live messages (not delivered). */
  append: (userId: UserId, count: number) => Promise<FanoutMessage[]>
  /** Opens a tab of the user as /ws does (ready, no since), resolved once it is live. */
  open: (userId: UserId, inbox?: Inbox) => Promise<{ socket: TabSocket, connection: Connection }>
} {
  const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), retention)
  t.teardown(() => inbox.close())
  const hub = new Hub({ heartbeatMs: 60_000 })
  t.teardown(() => hub.stop())
  const delivered: Array<[number, number]> = []
  const relay = new FeedRelay(hub, inbox, { maxBufferedBytes: BOUND, log: quiet, observer: { delivered: (timestamp, sockets) => delivered.push([timestamp, sockets]) } })
  let offset = 0
  return {
    inbox,
    hub,
    relay,
    delivered,
    append: async (userId, count) => {
      const records = Array.from({ length: count }, () => ({ notification: followNotification(users[userId === '3' ? '1' : '3'], users[userId]), topic: 't', partition: 0, offset: String(offset++) }))
      const { appended } = await inbox.append(records)
      return appended.map(({ seq, json, unread, notification }) => ({
        userId: notification.userId, text: notificationFrame(json, encodeCursor(inbox.epoch, seq), seq, unread), seq, timestamp: 1000 + seq
      }))
    },
    open: async (userId, from = inbox) => {
      const socket = new TabSocket()
      const connection = new Connection(userId, socket, BOUND)
      connection.hold()
      hub.add(connection)
      await openFeed(connection, from, users[userId], undefined, BOUND)
      return { socket, connection }
    }
  }
}

function deliver (relay: FeedRelay, messages: FanoutMessage[]): void {
  relay.batch(() => { for (const message of messages) relay.deliver(message) })
}

t.test('frames that follow on go straight out; a repeat is dropped', async (t) => {
  const { relay, append, open, delivered } = gateway(t)
  await append('1', 2)
  const tab = await open('1')
  const live = await append('1', 2)
  deliver(relay, live)
  t.same(tab.socket.seqs, [3, 4], 'in order, at once')
  deliver(relay, live)
  deliver(relay, [live[0]!])
  t.same(tab.socket.seqs, [3, 4], 'repeats are not sent again')
  t.same(delivered, [[1003, 1], [1004, 1], [1003, 0], [1004, 0], [1003, 0]], 'the observer counts the sockets that took each')
})

t.test('a hole is filled from the inbox before the next frame, in order, exactly once', async (t) => {
  const { relay, append, open } = gateway(t)
  const tab = await open('1')
  const live = await append('1', 5)
  deliver(relay, [live[0]!]) // 1
  deliver(relay, [live[3]!]) // 4: 2 and 3 were lost on the way
  deliver(relay, [live[4]!]) // 5 arrives while the hole is being filled
  await tab.socket.until('5 sent', () => tab.socket.seqs.includes(5))
  t.same(tab.socket.seqs, [1, 2, 3, 4, 5])
  t.equal(tab.connection.holding, false, 'live again')
  deliver(relay, live)
  const next = await append('1', 1)
  deliver(relay, next)
  t.same(tab.socket.seqs, [1, 2, 3, 4, 5, 6], 'late copies of the lost frames are repeats; the next one follows on')
})

t.test('frames held during a fill keep their order with frames without seq, and every tab is filled on its own', async (t) => {
  const { relay, append, open } = gateway(t)
  const behind = await open('1')
  const live = await append('1', 3)
  const ahead = await open('1') // opened after 1–3 were stored: its ready says 3
  deliver(relay, [live[2]!, { userId: '1', text: unreadFrame(0) }])
  await behind.socket.until('the unread frame', () => behind.socket.frames.some((frame) => frame.type === 'unread'))
  t.same(behind.socket.frames.slice(1).map((frame) => frame.type === 'unread' ? 'unread' : frame.seq), [1, 2, 3, 'unread'])
  t.same(ahead.socket.frames.slice(1).map((frame) => frame.type === 'unread' ? 'unread' : frame.seq), ['unread'], 'the tab that had 3 already gets only the unread frame')
})

t.test('after a resubscribe every connection of those users is caught up from the inbox', async (t) => {
  const { relay, append, open } = gateway(t)
  const emma = [await open('1'), await open('1')]
  const bruno = await open('2')
  const rick = await open('3')
  await append('1', 3) // published while the subscription was down: never delivered
  await append('2', 2)
  await append('3', 1)
  relay.resubscribed(['1', '2'])
  for (const tab of emma) await tab.socket.until('1–3', () => tab.socket.seqs.length === 3)
  await bruno.socket.until('1–2', () => bruno.socket.seqs.length === 2)
  relay.resubscribed(['1']) // again, with nothing missed this time
  deliver(relay, [...await append('1', 1), ...await append('2', 1)])
  for (const tab of emma) await tab.socket.until('4', () => tab.socket.seqs.includes(4))
  await bruno.socket.until('3', () => bruno.socket.seqs.includes(3))
  for (const tab of emma) t.same(tab.socket.seqs, [1, 2, 3, 4], 'each tab of the user: the missed ones from the inbox, then live, each once')
  t.same(bruno.socket.seqs, [1, 2, 3])
  t.same(rick.socket.seqs, [], 'a user whose subscription did not drop is left alone')
})

t.test('a tab still opening when the subscription comes back reads the inbox once more', async (t) => {
  const { relay, append, hub, inbox } = gateway(t)
  await append('1', 2)
  let feedRead: () => void = () => {}
  let goOn: () => void = () => {}
  const pausing = new Proxy(inbox, {
    get: (target, name) => {
      if (name === 'feed') {
        return async (userId: string) => {
          const state = await target.feed(userId)
          feedRead()
          await new Promise<void>((resolve) => { goOn = resolve })
          return state
        }
      }
      const value: unknown = Reflect.get(target, name)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const socket = new TabSocket()
  const connection = new Connection('1', socket, BOUND)
  connection.hold()
  hub.add(connection)
  const read = new Promise<void>((resolve) => { feedRead = resolve })
  const opening = openFeed(connection, pausing, users['1'], undefined, BOUND)
  await read // the feed was read at seq 2…
  await append('1', 1) // …then 3 was stored and its frame lost, and the subscription came back
  relay.resubscribed(['1'])
  goOn()
  await opening
  await socket.until('3', () => socket.seqs.includes(3))
  t.match(socket.frames[0], { type: 'ready', seq: 2 })
  t.same(socket.seqs, [3])
  t.equal(connection.holding, false)
})

t.test('a hole the inbox cannot fill (retention deleted it) closes the connection with 4009', async (t) => {
  const { relay, append, open, inbox } = gateway(t, { maxPerUser: 3, maxAgeMs: 365 * 86_400_000 })
  const tab = await open('1')
  const live = await append('1', 6)
  deliver(relay, [live[0]!])
  await inbox.prune() // keeps 4–6: 2 and 3 are gone
  deliver(relay, [live[5]!])
  await tab.socket.until('closed', () => tab.socket.closes.length > 0)
  t.same(tab.socket.closes, [{ code: CloseCode.FEED_GAP, reason: 'feed gap: reconnect with since' }])
  t.equal(CloseCode.FEED_GAP, 4009)
  t.same(tab.socket.seqs, [1], 'nothing after the hole was sent')
})

import { join } from 'node:path'
import { mock } from 'node:test'
import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { LocalFanout } from '../../server/fanout/local-fanout.js'
import type { FanoutMessage } from '../../server/fanout/types.js'
import { encodeCursor } from '../../server/feed/cursor.js'
import { stateFrame, unreadFrame } from '../../server/feed/frames.js'
import { liveMessage } from '../../server/feed/ingest.js'
import type { FeedRelay } from '../../server/feed/relay.js'
import { CloseCode } from '../../server/hub/close-codes.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import { InboxUnavailableError, type Inbox, type LoggedChange, type RetentionPolicy } from '../../server/inbox/types.js'
import { followNotification } from '../../server/notification.js'
import { BOUND, deliveryPath, type DeliveryPath } from '../helpers/delivery-path.js'
import { fakeHubSocket, FakeTransport } from '../helpers/fake-socket.js'
import { tempDir, type TestContext } from '../helpers/gateway.js'
import { consumedRecords } from '../helpers/records.js'

const users: Record<'1' | '2' | '3', { id: string, name: string }> = { 1: { id: '1', name: 'Emma' }, 2: { id: '2', name: 'Bruno' }, 3: { id: '3', name: 'Rick' } }
const KEEP_ALL: RetentionPolicy = { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 }

type UserId = keyof typeof users

/** One gateway's delivery path on an inbox of its own, with what its relay reported delivered. */
function deliveryNode (t: TestContext, options: { retention?: RetentionPolicy, readThrough?: (inbox: Inbox) => Inbox, pingMs?: number } = {}): DeliveryPath<LocalFanout> & {
  inbox: SqliteInbox
  delivered: Array<[number, number]>
  /** Stores notifications for `userId` as the consumer would; returns their live messages (not delivered). */
  append: (userId: UserId, count: number) => Promise<FanoutMessage[]>
} {
  const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), options.retention ?? KEEP_ALL)
  t.teardown(() => inbox.close())
  const delivered: Array<[number, number]> = []
  const path = deliveryPath(t, {
    inbox: options.readThrough?.(inbox) ?? inbox,
    fanout: (receiver) => new LocalFanout(receiver),
    observer: { delivered: (timestamp, sockets) => delivered.push([timestamp, sockets]) },
    ...(options.pingMs === undefined ? {} : { pingMs: options.pingMs })
  })
  let offset = 0
  return {
    ...path,
    inbox,
    delivered,
    append: async (userId, count) => {
      const records = consumedRecords(Array.from({ length: count }, () => followNotification(users[userId === '3' ? '1' : '3'], users[userId])), { firstOffset: offset })
      offset += count
      const { appended } = await inbox.append(records)
      return appended.map((stored) => liveMessage(inbox.epoch, stored, 1000 + stored.seq))
    }
  }
}

function deliver (relay: FeedRelay, messages: FanoutMessage[]): void {
  relay.corked(() => { for (const message of messages) relay.deliver(message) })
}

t.test('frames that follow on go straight out; a repeat is dropped', async (t) => {
  const { relay, append, open, delivered } = deliveryNode(t)
  await append('1', 2)
  const tab = await open(users['1'])
  const live = await append('1', 2)
  deliver(relay, live)
  t.same(tab.socket.seqs, [3, 4], 'in order, at once')
  deliver(relay, live)
  deliver(relay, [live[0]!])
  t.same(tab.socket.seqs, [3, 4], 'repeats are not sent again')
  t.same(delivered, [[1003, 1], [1004, 1], [1003, 0], [1004, 0], [1003, 0]], 'the observer counts the sockets that took each')
})

t.test('every tab of the user gets a frame, other users do not; the observer counts the sockets that took it', async (t) => {
  const { relay, open, append, delivered } = deliveryNode(t)
  const emma = [await open(users['1']), await open(users['1']), await open(users['1'])]
  const bruno = await open(users['2'])
  deliver(relay, await append('1', 1))
  for (const { socket } of emma) t.same(socket.seqs, [1])
  t.same(bruno.socket.seqs, [])
  deliver(relay, [...await append('3', 1), ...await append('2', 1)])
  t.same(bruno.socket.seqs, [1])
  for (const { socket } of emma) t.same(socket.seqs, [1])
  t.same(delivered, [[1001, 3], [1001, 0], [1001, 1]], 'three sockets, a user without sockets, one socket')
  deliver(relay, [{ userId: '1', text: unreadFrame(0, 1) }])
  for (const { socket } of emma) t.same(socket.frames.at(-1), { type: 'unread', unread: 0, rev: 1 })
  t.equal(delivered.length, 3, 'a frame without a record timestamp (unread) is not observed')
})

t.test('a tab past the send bound is closed as slow; the user\'s other tabs take the frame', async (t) => {
  const { relay, append, open, delivered } = deliveryNode(t)
  const fast = await open(users['1'])
  const slow = await open(users['1'])
  slow.socket.bufferedAmount = BOUND - 10
  deliver(relay, await append('1', 1))
  t.same(fast.socket.seqs, [1])
  t.same(slow.socket.seqs, [])
  t.same(slow.socket.closes.map((close) => close.code), [CloseCode.SLOW_CLIENT])
  t.same(delivered, [[1001, 1]], 'only the fast tab took it')
})

t.test('a frame is measured once for all of a user\'s tabs', async (t) => {
  const { relay, open } = deliveryNode(t)
  for (let i = 0; i < 3; i++) await open(users['1'])
  const byteLength = mock.method(Buffer, 'byteLength')
  t.teardown(() => byteLength.mock.restore())
  deliver(relay, [{ userId: '1', text: '😀 followed you' }])
  t.equal(byteLength.mock.callCount(), 1)
})

t.test('corked corks each socket it writes to once, and uncorks it at the end', async (t) => {
  const { relay, hub } = deliveryNode(t)
  const [emmaTransport, brunoTransport] = [new FakeTransport(), new FakeTransport()]
  const [emma, bruno] = [fakeHubSocket('1', BOUND, { transport: emmaTransport }), fakeHubSocket('2', BOUND, { transport: brunoTransport })]
  for (const [user, { socket }] of [[users['1'], emma], [users['2'], bruno]] as const) {
    hub.add(socket)
    await relay.open(socket, user, undefined)
  }
  relay.corked(() => {
    relay.deliver({ userId: '1', text: 'n1', seq: 1 })
    relay.deliver({ userId: '1', text: 'n2', seq: 2 })
    relay.deliver({ userId: '1', text: 'unread' })
    t.same(emmaTransport.events, ['cork'], 'corked while the deliveries run')
  })
  t.same(emma.webSocket.sent.slice(1), ['n1', 'n2', 'unread'], 'every frame, in order')
  t.same(emmaTransport.events, ['cork', 'uncork'], 'one cork, one uncork: the frames leave together')
  t.same(brunoTransport.events, [], 'a socket the deliveries did not reach is left alone')
  relay.deliver({ userId: '1', text: 'live' })
  t.same(emmaTransport.events, ['cork', 'uncork'], 'outside `corked` nothing is corked')
})

t.test('a hole is filled from the inbox before the next frame, in order, exactly once', async (t) => {
  const { relay, append, open } = deliveryNode(t)
  const tab = await open(users['1'])
  const live = await append('1', 5)
  deliver(relay, [live[0]!]) // 1
  deliver(relay, [live[3]!]) // 4: 2 and 3 were lost on the way
  deliver(relay, [live[4]!]) // 5 arrives while the hole is being filled
  await tab.socket.until('5 sent', () => tab.socket.seqs.includes(5))
  t.same(tab.socket.seqs, [1, 2, 3, 4, 5])
  // After the notifications the fill reads the state log, then goes live.
  await eventually('live again', () => !tab.tab.holding)
  deliver(relay, live)
  const next = await append('1', 1)
  deliver(relay, next)
  t.same(tab.socket.seqs, [1, 2, 3, 4, 5, 6], 'late copies of the lost frames are repeats; the next one follows on')
})

t.test('frames held during a fill keep their order with frames without seq, and every tab is filled on its own', async (t) => {
  const { relay, append, open } = deliveryNode(t)
  const behind = await open(users['1'])
  const live = await append('1', 3)
  const ahead = await open(users['1']) // opened after 1–3 were stored: its ready says 3
  deliver(relay, [live[2]!, { userId: '1', text: unreadFrame(0, 1) }])
  await behind.socket.until('the unread frame', () => behind.socket.frames.some((frame) => frame.type === 'unread'))
  t.same(behind.socket.frames.slice(1).map((frame) => frame.type === 'notification' ? frame.seq : frame.type), [1, 2, 3, 'unread'])
  t.same(ahead.socket.frames.slice(1).map((frame) => frame.type === 'notification' ? frame.seq : frame.type), ['unread'], 'the tab that had 3 already gets only the unread frame')
})

t.test('after a resubscribe every tab of those users is caught up from the inbox', async (t) => {
  const { relay, append, open } = deliveryNode(t)
  const emma = [await open(users['1']), await open(users['1'])]
  const bruno = await open(users['2'])
  const rick = await open(users['3'])
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
  let feedRead: () => void = () => {}
  let goOn: () => void = () => {}
  const pausing = (inbox: Inbox): Inbox => new Proxy(inbox, {
    get: (target, name) => {
      if (name === 'snapshot') {
        return async (userId: string) => {
          const state = await target.snapshot(userId)
          feedRead()
          await new Promise<void>((resolve) => { goOn = resolve })
          return state
        }
      }
      const value: unknown = Reflect.get(target, name)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const { relay, append, open } = deliveryNode(t, { readThrough: pausing })
  await append('1', 2)
  const read = new Promise<void>((resolve) => { feedRead = resolve })
  const opening = open(users['1'])
  await read // the feed was read at seq 2…
  await append('1', 1) // …then 3 was stored and its frame lost, and the subscription came back
  relay.resubscribed(['1'])
  goOn()
  const { socket, tab } = await opening
  await socket.until('3', () => socket.seqs.includes(3))
  t.match(socket.frames[0], { type: 'ready', seq: 2 })
  t.same(socket.seqs, [3])
  t.equal(tab.holding, false)
})

t.test('a hole the inbox cannot fill (retention deleted it) closes the socket with 4009', async (t) => {
  const { relay, append, open, inbox } = deliveryNode(t, { retention: { maxPerUser: 3, maxAgeMs: KEEP_ALL.maxAgeMs } })
  const tab = await open(users['1'])
  const live = await append('1', 6)
  deliver(relay, [live[0]!])
  await inbox.prune() // keeps 4–6: 2 and 3 are gone
  deliver(relay, [live[5]!])
  await tab.socket.until('closed', () => tab.socket.closes.length > 0)
  t.same(tab.socket.closes, [{ code: CloseCode.FEED_GAP, reason: 'feed gap: reconnect with since' }])
  t.equal(CloseCode.FEED_GAP, 4009)
  t.same(tab.socket.seqs, [1], 'nothing after the hole was sent')
})

// A hole was noticed only when a later frame arrived, so a lost last frame stayed lost.
t.test('the last frame lost on the way (seqs 1–4 delivered, 5 dropped): the tab gets 5 from the inbox at the next ping, with no further notification', async (t) => {
  const { relay, append, open } = deliveryNode(t, { pingMs: 200 })
  const tab = await open(users['1'])
  const live = await append('1', 5)
  deliver(relay, live.slice(0, 4))
  await tab.socket.until('5, from the inbox', () => tab.socket.seqs.includes(5), 5000)
  t.same(tab.socket.seqs, [1, 2, 3, 4, 5], 'in order, each once')
  await tab.socket.until('a ping after 5', () => tab.socket.frames.slice(6).some((frame) => frame.type === 'ping'), 5000)
  t.match(tab.socket.frames.slice(6).find((frame) => frame.type === 'ping'), { type: 'ping', seq: 5, rev: 0, unread: 5 }, 'the ping tells the feed\'s newest seq, rev and unread count')
})

t.test('every tab of every user gets a ping every interval; one in step gets just the ping, and a read mark shows in it', async (t) => {
  const { relay, append, open, inbox } = deliveryNode(t, { pingMs: 100 })
  deliver(relay, await append('1', 2))
  const emma = [await open(users['1']), await open(users['1'])]
  const bruno = await open(users['2'])
  await inbox.markRead('1', { upTo: 1 })
  const emmaPing = { type: 'ping', seq: 2, rev: 1, unread: 1 }
  for (const tab of emma) {
    await tab.socket.until('two pings', () => tab.socket.frames.filter((frame) => frame.type === 'ping').length >= 2, 5000)
    // The read mark's frame was never published here: the first ping finds the tab behind the feed's rev, and fills it from the state log.
    t.match(tab.socket.frames[1], { type: 'state', rev: 1, seq: 2, changes: [{ op: 'read', upToSeq: 1 }], unread: 1 }, 'the missed state change first')
    t.same(tab.socket.frames.slice(2, 4), [emmaPing, emmaPing], 'then nothing but pings')
  }
  await bruno.socket.until('two pings', () => bruno.socket.frames.filter((frame) => frame.type === 'ping').length >= 2, 5000)
  t.same(bruno.socket.frames.slice(1, 3), [{ type: 'ping', seq: 0, rev: 0, unread: 0 }, { type: 'ping', seq: 0, rev: 0, unread: 0 }], 'nothing but pings')
})

t.test('a round of pings over many users yields to the loop between chunks, and reaches every tab', async (t) => {
  const { open } = deliveryNode(t, { pingMs: 200 })
  // The relay's timer is unref'd (it must not keep a gateway alive); this keeps the test alive meanwhile.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const tabs: Array<Awaited<ReturnType<typeof open>>> = []
  for (let i = 0; i < 250; i++) tabs.push(await open({ id: `u${i}`, name: `User ${i}` }))
  const pinged = (): number => tabs.filter((tab) => tab.socket.frames.some((frame) => frame.type === 'ping')).length
  const first = tabs[0]!.socket
  const send = first.send.bind(first)
  // Work queued when the round's first ping is written runs before its last one is.
  const pingedBeforeOtherWork = new Promise<number>((resolve) => {
    first.send = (data, written) => {
      send(data, written)
      if (data.includes('"ping"')) setImmediate(() => resolve(pinged()))
    }
  })
  t.ok(await pingedBeforeOtherWork < tabs.length, 'other work ran while the round was under way')
  for (const tab of tabs) await tab.socket.until('a ping', () => tab.socket.frames.some((frame) => frame.type === 'ping'), 5000)
  t.pass('every tab got its ping')
})

t.test('while the inbox cannot be read the pings still go, without where the feed stands', async (t) => {
  let down = true
  const failing = (inbox: Inbox): Inbox => new Proxy(inbox, {
    get: (target, name) => {
      if (name === 'feeds' && down) return async () => { throw new InboxUnavailableError('inbox down') }
      const value: unknown = Reflect.get(target, name)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const { append, open } = deliveryNode(t, { pingMs: 100, readThrough: failing })
  const tab = await open(users['1'])
  await append('1', 1) // its frame lost
  await tab.socket.until('a ping', () => tab.socket.frames.some((frame) => frame.type === 'ping'), 5000)
  t.same(tab.socket.frames.slice(1), [{ type: 'ping' }], 'a bare ping: the connection is alive')
  down = false
  await tab.socket.until('1, once the inbox answers', () => tab.socket.seqs.includes(1), 5000)
})

t.test('an inbox that does not answer does not hold the pings back: after half an interval they go without the feed', async (t) => {
  const hanging = (inbox: Inbox): Inbox => new Proxy(inbox, {
    get: (target, name) => {
      if (name === 'feeds') return async () => await new Promise(() => {})
      const value: unknown = Reflect.get(target, name)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const { open } = deliveryNode(t, { pingMs: 100, readThrough: hanging })
  const tab = await open(users['1'])
  await tab.socket.until('two pings', () => tab.socket.frames.filter((frame) => frame.type === 'ping').length >= 2, 5000)
  t.same(tab.socket.frames.slice(1, 3), [{ type: 'ping' }, { type: 'ping' }])
})

t.test('a lost state frame is filled from the state log when the next one arrives, in rev order, each once', async (t) => {
  const { relay, append, open, inbox } = deliveryNode(t)
  const live = await append('1', 2)
  const tab = await open(users['1'])
  deliver(relay, live)
  const ids = (await inbox.after('1', 0, 2)).map(({ notification }) => notification.id)
  const changes: LoggedChange[] = []
  for (const id of ids) changes.push((await inbox.changeState('1', { op: 'read', ids: [id] })).change!)
  const message = ({ rev, seq, changes: what, unread, unseen }: LoggedChange): FanoutMessage =>
    ({ userId: '1', text: stateFrame({ rev, seq, changes: what, unread, unseen, cursor: encodeCursor(inbox.epoch, seq, rev) }), seq, rev, state: true })
  deliver(relay, [message(changes[1]!)]) // rev 1 was lost on the way
  await tab.socket.until('rev 2', () => tab.socket.frames.some((frame) => frame.type === 'state' && frame.rev === 2))
  deliver(relay, changes.map(message)) // late copies
  const states = tab.socket.frames.flatMap((frame) => frame.type === 'state' ? [frame.rev] : [])
  t.same(states, [1, 2], 'rev 1 from the log, then rev 2, and the late copies dropped as repeats')
  await eventually('live again', () => !tab.tab.holding)
})

import t from 'tap'
import { placeFrame, placeOf, Tab, type OutboundFrame } from '../../server/feed/tab.js'
import { CloseCode } from '../../server/hub/close-codes.js'
import { CLOSED, fakeHubSocket, type FakeSocket } from '../helpers/fake-socket.js'

/** A notification frame with `seq`; its text is `n<seq>`. */
function frame (seq: number): OutboundFrame {
  return framed(`n${seq}`, seq)
}

function framed (text: string, seq?: number): OutboundFrame {
  return { text, bytes: Buffer.byteLength(text), seq }
}

/** A state change's frame: its `rev`, made when the feed's newest seq was `seq`; its text is `s<rev>`. */
function state (rev: number, seq: number): OutboundFrame {
  return { text: `s${rev}`, bytes: Buffer.byteLength(`s${rev}`), seq, rev, state: true }
}

/** A tab on a fresh socket with the send bound `maxBufferedBytes`. */
function open (maxBufferedBytes = 1024): { webSocket: FakeSocket, tab: Tab } {
  const { webSocket, socket } = fakeHubSocket('1', maxBufferedBytes)
  return { webSocket, tab: new Tab(socket) }
}

t.test('the seq rule: at or before the last seq a repeat, right after it next, later a hole', async (t) => {
  t.equal(placeOf(3, 4), 'repeat')
  t.equal(placeOf(4, 4), 'repeat')
  t.equal(placeOf(5, 4), 'next')
  t.equal(placeOf(6, 4), 'hole')
  t.equal(placeOf(1, 0), 'next', 'the first notification of a feed')
  t.equal(placeOf(2, 0), 'hole')
})

t.test('a live frame that follows on goes out; a repeat is dropped; frames without seq always go out', async (t) => {
  const { webSocket, tab } = open()
  t.equal(tab.offer(frame(1)), 'sent')
  t.equal(tab.offer(frame(2)), 'sent')
  t.equal(tab.offer(frame(2)), 'dropped', 'a repeat')
  t.equal(tab.offer(frame(1)), 'dropped', 'an older one')
  t.equal(tab.offer(framed('unread')), 'sent')
  t.same(webSocket.sent, ['n1', 'n2', 'unread'])
  t.equal(tab.lastSeq, 2)
})

t.test('a live frame after a hole is held, and the caller told to fill the hole; frames behind it wait too', async (t) => {
  const { webSocket, tab } = open()
  t.equal(tab.offer(frame(1)), 'sent')
  t.equal(tab.offer(frame(4)), 'hole', '2 and 3 were lost on the way')
  t.equal(tab.holding, true)
  t.equal(tab.offer(frame(5)), 'held', 'one hole is filled once')
  t.equal(tab.offer(framed('unread')), 'held')
  t.same(webSocket.sent, ['n1'])
  tab.sendNow('n2', { seq: 2 })
  tab.sendNow('n3', { seq: 3 })
  t.equal(tab.release(3, 0), true)
  t.same(webSocket.sent, ['n1', 'n2', 'n3', 'n4', 'n5', 'unread'])
  t.equal(tab.lastSeq, 5)
  t.equal(tab.holding, false)
})

t.test('a closed socket takes no live frame, and a closed tab meets no hole', async (t) => {
  const { webSocket, tab } = open()
  webSocket.readyState = CLOSED
  t.equal(tab.offer(frame(1)), 'dropped')
  t.equal(tab.offer(frame(5)), 'dropped')
  t.equal(tab.holding, false)
})

t.test('the bound is in UTF-8 bytes for held frames and the catch-up\'s sends too', async (t) => {
  const emoji = '😀'.repeat(20) // 40 UTF-16 code units, 80 bytes
  const sends: Array<[string, (tab: Tab) => boolean]> = [
    ['offer while held', (tab) => { tab.hold(); return tab.offer(framed(emoji)) !== 'dropped' }],
    ['sendNow', (tab) => tab.sendNow(emoji)]
  ]
  for (const [name, send] of sends) {
    const { webSocket, tab } = open(100)
    webSocket.bufferedAmount = 30
    t.equal(send(tab), false, `${name}: 30 + 80 bytes is past 100`)
    t.match(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT }], name)
    t.same(webSocket.sent, [], name)
  }
  const written = open(100)
  written.webSocket.bufferedAmount = 30
  t.equal(await written.tab.sendWritten(emoji), false, 'sendWritten')
})

t.test('held frames count their bytes against the bound', async (t) => {
  const { webSocket, tab } = open(100)
  tab.hold()
  t.equal(tab.offer(framed('é'.repeat(25), 1)), 'held', '50 bytes held')
  t.equal(tab.offer(framed('é'.repeat(26), 2)), 'dropped', '50 + 52 bytes is past 100 (51 UTF-16 units would not be)')
  t.match(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT }])
})

t.test('held frames count against the bound: past it, the socket is closed as slow while holding', async (t) => {
  const { webSocket, tab } = open(10)
  tab.hold()
  t.equal(tab.offer(framed('12345', 1)), 'held')
  t.equal(tab.offer(framed('123456', 2)), 'dropped', 'the frame past the bound is refused')
  t.match(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT }])
  tab.release(0, 0)
  t.same(webSocket.sent, [], 'nothing held is sent after the close')
})

t.test('a held tab whose socket is no longer open takes no frames', async (t) => {
  const { webSocket, tab } = open(100)
  tab.hold()
  webSocket.readyState = CLOSED
  t.equal(tab.offer(framed('x'.repeat(200))), 'dropped')
  t.same([webSocket.closes, webSocket.terminations], [[], 0], 'not closed as slow: it was gone already')
})

t.test('hold/release: live frames wait, then go out in order without what the replay sent', async (t) => {
  const { webSocket, tab } = open()
  tab.hold()
  t.equal(tab.offer(frame(3)), 'held', 'a held frame counts as taken')
  t.equal(tab.offer(framed('unread-1')), 'held')
  t.equal(tab.offer(frame(5)), 'held')
  t.equal(tab.offer(frame(4)), 'held')
  t.equal(tab.offer(frame(6)), 'held')
  t.same(webSocket.sent, [], 'nothing is written while held')
  t.equal(tab.sendNow('ready'), true, 'sendNow goes out while held')
  t.equal(tab.sendNow('n1'), true)
  t.same(webSocket.sent, ['ready', 'n1'])
  tab.release(4, 0)
  t.same(webSocket.sent, ['ready', 'n1', 'unread-1', 'n5', 'n6'], 'frames with seq <= 4 are dropped, the rest keep their order')
  t.equal(tab.offer(frame(7)), 'sent', 'after release, frames go out at once')
  t.same(webSocket.sent.at(-1), 'n7')
})

t.test('frames held while a replay runs go out after it, without what it sent', async (t) => {
  const { webSocket, tab } = open()
  tab.hold()
  for (const seq of [10, 11, 12]) t.equal(tab.offer(frame(seq)), 'held')
  tab.offer(framed('unread'))
  t.same(webSocket.sent, [])
  tab.sendNow('n10', { seq: 10 })
  tab.sendNow('n11', { seq: 11 })
  tab.release(11, 0)
  t.same(webSocket.sent, ['n10', 'n11', 'n12', 'unread'])
})

t.test('hold twice keeps the frames held so far', async (t) => {
  const { webSocket, tab } = open()
  tab.hold()
  tab.offer(frame(1))
  tab.hold()
  tab.offer(frame(2))
  tab.release(0, 0)
  t.same(webSocket.sent, ['n1', 'n2'])
})

t.test('a close drops the held frames', async (t) => {
  const { webSocket, tab } = open()
  tab.hold()
  tab.offer(frame(1))
  tab.socket.close(CloseCode.GOING_AWAY, 'bye')
  t.equal(tab.release(0, 0), true, 'closed: nothing left to go live')
  t.same(webSocket.sent, [])
  t.equal(tab.holding, false)
})

t.test('lastSeq follows every send that carries a seq: live, replayed, and released', async (t) => {
  const { webSocket, tab } = open()
  t.equal(tab.lastSeq, 0)
  tab.offer(frame(1))
  t.equal(tab.lastSeq, 1, 'a live frame')
  tab.offer(framed('unread'))
  t.equal(tab.lastSeq, 1, 'a frame without seq leaves it')
  tab.sendNow('n2', { seq: 2 })
  t.equal(tab.lastSeq, 2, 'sendNow with a seq (the replay)')
  await tab.sendWritten('n3', { seq: 3 })
  t.equal(tab.lastSeq, 3, 'sendWritten with a seq')
  tab.hold()
  tab.offer(frame(4))
  t.equal(tab.lastSeq, 3, 'a held frame is not sent yet')
  tab.release(3, 0)
  t.equal(tab.lastSeq, 4, 'released')
  tab.release(9, 0)
  t.equal(tab.lastSeq, 9, 'release from a position the client was told (ready, synced)')
  webSocket.readyState = CLOSED
  tab.sendNow('n10', { seq: 10 })
  t.equal(tab.lastSeq, 9, 'what was not sent does not count')
})

t.test('release stops at a hole in the held frames and keeps the rest held, in order', async (t) => {
  const { webSocket, tab } = open()
  tab.hold()
  for (const held of [frame(2), frame(3), framed('unread'), frame(6), framed('unread again'), frame(7)]) tab.offer(held)
  t.equal(tab.release(1, 0), false, 'stopped at 6: 4 and 5 are missing')
  t.same(webSocket.sent, ['n2', 'n3', 'unread'])
  t.equal(tab.lastSeq, 3)
  t.equal(tab.holding, true, 'still holding')
  tab.sendNow('n4', { seq: 4 })
  tab.sendNow('n5', { seq: 5 })
  t.equal(tab.release(5, 0), true)
  t.same(webSocket.sent, ['n2', 'n3', 'unread', 'n4', 'n5', 'n6', 'unread again', 'n7'])
  t.equal(tab.lastSeq, 7)
  t.equal(tab.holding, false)
})

t.test('a tab marked behind while holding releases nothing once, for another replay', async (t) => {
  const { webSocket, tab } = open()
  tab.markBehind()
  t.equal(tab.behind, false, 'not holding: nothing to mark')
  tab.hold()
  tab.offer(frame(1))
  tab.markBehind()
  t.equal(tab.behind, true)
  t.equal(tab.release(0, 0), false)
  t.same(webSocket.sent, [])
  t.equal(tab.behind, false, 'cleared by the release it stopped')
  t.equal(tab.release(0, 0), true)
  t.same(webSocket.sent, ['n1'])
})

t.test('a release that meets a slow close stops and leaves nothing held', async (t) => {
  const { webSocket, tab } = open(100)
  tab.hold()
  tab.offer(framed('x'.repeat(60), 1))
  tab.offer(framed('y'.repeat(30), 2))
  webSocket.bufferedAmount = 50
  t.equal(tab.release(0, 0), true, 'not held any more: closed')
  t.match(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT }])
  t.equal(tab.holding, false)
  t.equal(tab.lastSeq, 0)
})

t.test('the rule extends to rev: a state change is placed by its rev, and is a hole too while the tab lacks a notification it came after', async (t) => {
  t.equal(placeFrame({ seq: 3, rev: 2, state: true }, 3, 1), 'next')
  t.equal(placeFrame({ seq: 3, rev: 1, state: true }, 3, 1), 'repeat', 'rev ≤ last: a repeat')
  t.equal(placeFrame({ seq: 3, rev: 3, state: true }, 3, 1), 'hole', 'rev ≠ last + 1: a hole')
  t.equal(placeFrame({ seq: 4, rev: 2, state: true }, 3, 1), 'hole', 'made after seq 4, which the tab has not got: its cursor would skip it')
  t.equal(placeFrame({ seq: 2, rev: 2, state: true }, 3, 1), 'next', 'made before the tab\'s newest notification: fine')
  t.equal(placeFrame({ seq: 4, rev: 2 }, 3, 1), 'hole', 'a notification stored after a state change the tab has not got')
  t.equal(placeFrame({ seq: 4, rev: 1 }, 3, 1), 'next')
  t.equal(placeFrame({ seq: 4, rev: undefined }, 3, 1), 'next', 'a notification without a rev (an older gateway\'s) is placed by seq alone')
  t.equal(placeFrame({ seq: undefined }, 3, 1), undefined, 'frames that are neither just go')
})

t.test('state frames go out rev after rev; one that arrives before the notification it came after is held, and lastRev follows the sends', async (t) => {
  const { webSocket, tab } = open()
  t.equal(tab.offer(frame(1)), 'sent')
  t.equal(tab.offer(state(1, 1)), 'sent')
  t.equal(tab.lastRev, 1)
  t.equal(tab.offer(state(1, 1)), 'dropped', 'a repeat')
  t.equal(tab.offer(state(2, 2)), 'hole', 'made after seq 2, which has not arrived: held, fill')
  t.equal(tab.offer(frame(2)), 'held')
  tab.sendNow('n2', { seq: 2 })
  t.ok(tab.release(2, 1), 'the replay brought seq 2: the held state change follows on')
  t.same(webSocket.sent, ['n1', 's1', 'n2', 's2'], 'the notification before the change made after it')
  t.same([tab.lastSeq, tab.lastRev], [2, 2])
})

import { mock } from 'node:test'
import t from 'tap'
import { CloseCode } from '../../server/hub/close-codes.js'
import { Connection } from '../../server/hub/socket.js'
import { CLOSED, CLOSING, FakeSocket } from '../helpers/fake-socket.js'

function frame (seq: number): { text: string, seq: number } {
  return { text: `n${seq}`, seq }
}

t.test('an open connection writes frames to its socket', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  t.equal(connection.userId, '1')
  t.equal(connection.socket, socket)
  t.equal(connection.open, true)
  t.equal(connection.send({ text: 'a' }), true)
  t.equal(connection.sendNow('b'), true)
  t.same(socket.sent, ['a', 'b'])
  t.equal(connection.closeCode, undefined)
})

t.test('a socket that is not open takes no frames', async (t) => {
  for (const readyState of [0, CLOSING, CLOSED]) {
    const socket = new FakeSocket()
    socket.readyState = readyState
    const connection = new Connection('1', socket, 1024)
    t.equal(connection.open, false)
    t.equal(connection.send({ text: 'a' }), false)
    t.equal(connection.sendNow('b'), false)
    t.same(socket.sent, [], `readyState ${readyState}`)
  }
})

t.test('a client whose send buffer would pass the bound is closed as slow', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 100)
  socket.bufferedAmount = 90
  t.equal(connection.send({ text: 'x'.repeat(10) }), true, 'exactly at the bound is still sent')
  socket.bufferedAmount = 91
  t.equal(connection.send({ text: 'x'.repeat(10) }), false, 'one byte past it is not')
  t.equal(socket.sent.length, 1)
  t.same(socket.closes, [{ code: CloseCode.SLOW_CLIENT, reason: 'slow client: send buffer full' }])
  t.equal(socket.closes[0]?.code, 4008)
  t.equal(connection.closeCode, CloseCode.SLOW_CLIENT)
  t.equal(connection.open, false)
  socket.bufferedAmount = 0
  t.equal(connection.send({ text: 'y' }), false, 'nothing is sent after the close')
  t.equal(socket.sent.length, 1)
  t.equal(socket.closes.length, 1, 'closed once')
})

// Regression (issue 8): the bound compared UTF-16 code units with bufferedAmount, which is in bytes.
t.test('the bound is in UTF-8 bytes: multi-byte text under it in UTF-16 units but over it in bytes closes as slow', async (t) => {
  const emoji = '😀'.repeat(20) // 40 UTF-16 code units, 80 bytes
  const sends: Array<[string, (connection: Connection) => boolean]> = [
    ['send', (connection) => connection.send({ text: emoji })],
    ['send while held', (connection) => { connection.hold(); return connection.send({ text: emoji }) }],
    ['sendNow', (connection) => connection.sendNow(emoji)]
  ]
  for (const [name, send] of sends) {
    const socket = new FakeSocket()
    const connection = new Connection('1', socket, 100)
    socket.bufferedAmount = 30
    t.equal(send(connection), false, `${name}: 30 + 80 bytes is past 100`)
    t.equal(connection.closeCode, CloseCode.SLOW_CLIENT, name)
    t.same(socket.sent, [], name)
  }
  t.equal(await new Connection('1', Object.assign(new FakeSocket(), { bufferedAmount: 30 }), 100).sendWritten(emoji), false, 'sendWritten')

  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 100)
  socket.bufferedAmount = 20
  t.equal(connection.send({ text: emoji }), true, '20 + 80 bytes is exactly at the bound')
})

t.test('a frame that carries its byte length is bounded by it', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 100)
  t.equal(connection.send({ text: 'a', bytes: 101 }), false)
  t.equal(connection.closeCode, CloseCode.SLOW_CLIENT)
})

t.test('held frames count their bytes against the bound', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 100)
  connection.hold()
  t.equal(connection.send({ text: 'é'.repeat(25), seq: 1 }), true, '50 bytes held')
  t.equal(connection.send({ text: 'é'.repeat(26), seq: 2 }), false, '50 + 52 bytes is past 100 (51 UTF-16 units would not be)')
  t.equal(connection.closeCode, CloseCode.SLOW_CLIENT)
})

t.test('a slow close tells onClosedAsSlow once; other closes do not', async (t) => {
  const slow = new Connection('1', Object.assign(new FakeSocket(), { bufferedAmount: 200 }), 100)
  let told = 0
  slow.onClosedAsSlow = () => { told++ }
  slow.sendNow('x')
  slow.send({ text: 'y' })
  slow.close(CloseCode.SLOW_CLIENT, 'again')
  t.equal(told, 1)

  const expired = new Connection('1', new FakeSocket(), 100)
  expired.onClosedAsSlow = () => { told++ }
  expired.close(CloseCode.TOKEN_EXPIRED, 'token expired')
  t.equal(told, 1)
})

t.test('a held connection whose socket is no longer open takes no frames', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 100)
  connection.hold()
  socket.readyState = CLOSED
  t.equal(connection.send({ text: 'x'.repeat(200) }), false)
  t.equal(connection.closeCode, undefined, 'not closed as slow: it was gone already')
})

t.test('hold/release: live frames wait, then go out in order without what the replay sent', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  connection.hold()
  t.equal(connection.send(frame(3)), true, 'a held frame counts as taken')
  t.equal(connection.send({ text: 'unread-1' }), true)
  t.equal(connection.send(frame(5)), true)
  t.equal(connection.send(frame(4)), true)
  t.equal(connection.send(frame(6)), true)
  t.same(socket.sent, [], 'nothing is written while held')
  t.equal(connection.sendNow('ready'), true, 'sendNow goes out while held')
  t.equal(connection.sendNow('n1'), true)
  t.same(socket.sent, ['ready', 'n1'])
  connection.release(4)
  t.same(socket.sent, ['ready', 'n1', 'unread-1', 'n5', 'n6'], 'frames with seq <= 4 are dropped, the rest keep their order')
  t.equal(connection.send(frame(2)), true, 'after release, frames go out at once')
  t.same(socket.sent.at(-1), 'n2')
})

t.test('hold twice keeps the frames held so far', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  connection.hold()
  connection.send(frame(1))
  connection.hold()
  connection.send(frame(2))
  connection.release(0)
  t.same(socket.sent, ['n1', 'n2'])
})

t.test('held frames count against the bound: past it, the connection is closed as slow while holding', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 10)
  connection.hold()
  t.equal(connection.send({ text: '12345', seq: 1 }), true)
  t.equal(connection.send({ text: '123456', seq: 2 }), false, 'the frame past the bound is refused')
  t.equal(connection.closeCode, CloseCode.SLOW_CLIENT)
  connection.release(0)
  t.same(socket.sent, [], 'nothing held is sent after the close')
})

t.test('close drops the held frames', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  connection.hold()
  connection.send(frame(1))
  connection.close(CloseCode.GOING_AWAY, 'bye')
  connection.release(0)
  t.same(socket.sent, [])
})

t.test('sendWritten resolves once the frame was written out', async (t) => {
  const socket = new FakeSocket()
  socket.flushes = false
  const connection = new Connection('1', socket, 1024)
  let settled = false
  const written = connection.sendWritten('page').then((ok) => { settled = true; return ok })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(settled, false, 'waits for the socket')
  socket.unflushed.shift()?.()
  t.equal(await written, true)
  t.same(socket.sent, ['page'])
})

t.test('sendWritten resolves false when the frame was not sent, or the socket closed meanwhile', async (t) => {
  const closed = new FakeSocket()
  closed.readyState = CLOSED
  t.equal(await new Connection('1', closed, 1024).sendWritten('x'), false)

  const slow = new FakeSocket()
  slow.bufferedAmount = 2000
  t.equal(await new Connection('1', slow, 1024).sendWritten('x'), false)

  const closing = new FakeSocket()
  closing.flushes = false
  const connection = new Connection('1', closing, 1024)
  const written = connection.sendWritten('x')
  connection.close(CloseCode.GOING_AWAY, 'bye')
  closing.unflushed.shift()?.()
  t.equal(await written, false)
})

t.test('heartbeat: a peer that did not pong since the last beat is terminated', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  t.equal(connection.heartbeat(), true, 'the first beat pings')
  t.equal(socket.pings, 1)
  t.equal(socket.terminations, 0)
  t.equal(connection.heartbeat(), false, 'no pong: dropped on the next beat')
  t.equal(socket.terminations, 1)
  t.equal(socket.pings, 1, 'no ping to a dead peer')
})

t.test('heartbeat: a peer that pongs stays', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  for (let beat = 0; beat < 5; beat++) {
    t.equal(connection.heartbeat(), true)
    connection.markAlive()
  }
  t.equal(socket.pings, 5)
  t.equal(socket.terminations, 0)
})

t.test('heartbeat does not ping a socket that is not open', async (t) => {
  const socket = new FakeSocket()
  socket.readyState = CLOSING
  const connection = new Connection('1', socket, 1024)
  t.equal(connection.heartbeat(), true)
  t.equal(socket.pings, 0)
})

t.test('close sends the code once, and terminates a peer that does not finish the handshake', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] })
  t.teardown(() => mock.timers.reset())
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  connection.close(CloseCode.TOKEN_EXPIRED, 'token expired')
  connection.close(CloseCode.GOING_AWAY, 'again')
  t.same(socket.closes, [{ code: 4001, reason: 'token expired' }])
  t.equal(connection.closeCode, CloseCode.TOKEN_EXPIRED)
  t.equal(connection.open, false)
  t.equal(socket.terminations, 0, 'the peer gets time to answer the close')
  mock.timers.tick(999)
  t.equal(socket.terminations, 0)
  mock.timers.tick(1)
  t.equal(socket.terminations, 1, 'cut off after the grace')
})

t.test('close of a socket that is no longer open terminates it at once', async (t) => {
  const socket = new FakeSocket()
  socket.readyState = CLOSING
  const connection = new Connection('1', socket, 1024)
  connection.close(CloseCode.GOING_AWAY, 'bye')
  t.same(socket.closes, [])
  t.equal(socket.terminations, 1)
  t.equal(connection.closeCode, CloseCode.GOING_AWAY)
})

t.test('lastSeq follows every send that carries a seq: live, replayed, and released', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  t.equal(connection.lastSeq, 0)
  connection.send(frame(1))
  t.equal(connection.lastSeq, 1, 'a live frame')
  connection.send({ text: 'unread' })
  t.equal(connection.lastSeq, 1, 'a frame without seq leaves it')
  connection.sendNow('n2', 2)
  t.equal(connection.lastSeq, 2, 'sendNow with a seq (the replay)')
  await connection.sendWritten('n3', 3)
  t.equal(connection.lastSeq, 3, 'sendWritten with a seq')
  connection.hold()
  connection.send(frame(4))
  t.equal(connection.lastSeq, 3, 'a held frame is not sent yet')
  connection.release(3)
  t.equal(connection.lastSeq, 4, 'released')
  connection.release(9)
  t.equal(connection.lastSeq, 9, 'release from a position the client was told (ready, synced)')
  socket.readyState = CLOSED
  connection.sendNow('n10', 10)
  t.equal(connection.lastSeq, 9, 'what was not sent does not count')
})

t.test('release stops at a hole in the held frames and keeps the rest held, in order', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  connection.hold()
  for (const held of [frame(2), frame(3), { text: 'unread' }, frame(6), { text: 'unread again' }, frame(7)]) connection.send(held)
  t.equal(connection.release(1), false, 'stopped at 6: 4 and 5 are missing')
  t.same(socket.sent, ['n2', 'n3', 'unread'])
  t.equal(connection.lastSeq, 3)
  t.equal(connection.holding, true, 'still holding')
  connection.sendNow('n4', 4)
  connection.sendNow('n5', 5)
  t.equal(connection.release(5), true)
  t.same(socket.sent, ['n2', 'n3', 'unread', 'n4', 'n5', 'n6', 'unread again', 'n7'])
  t.equal(connection.lastSeq, 7)
  t.equal(connection.holding, false)
})

t.test('a connection marked behind while holding releases nothing once, for another replay', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 1024)
  connection.markBehind()
  t.equal(connection.behind, false, 'not holding: nothing to mark')
  connection.hold()
  connection.send(frame(1))
  connection.markBehind()
  t.equal(connection.release(0), false)
  t.same(socket.sent, [])
  t.equal(connection.behind, false, 'cleared by the release it stopped')
  t.equal(connection.release(0), true)
  t.same(socket.sent, ['n1'])
})

t.test('a release that meets a slow close stops and leaves nothing held', async (t) => {
  const socket = new FakeSocket()
  const connection = new Connection('1', socket, 100)
  connection.hold()
  connection.send({ text: 'x'.repeat(60), seq: 1 })
  connection.send({ text: 'y'.repeat(30), seq: 2 })
  socket.bufferedAmount = 50
  t.equal(connection.release(0), true, 'not held any more: closed')
  t.equal(connection.closeCode, CloseCode.SLOW_CLIENT)
  t.equal(connection.holding, false)
  t.equal(connection.lastSeq, 0)
})

import t from 'tap'
import { CloseCode } from '../../server/hub/close-codes.js'
import { HubSocket } from '../../server/hub/socket.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { CLOSED, CLOSING, FakeSocket, FakeTransport } from '../helpers/fake-socket.js'

t.test('an open socket writes frames to its WebSocket', async (t) => {
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 1024)
  t.equal(socket.userId, '1')
  t.equal(socket.open, true)
  t.equal(socket.send('a'), true)
  t.equal(socket.send('b', 1), true)
  t.same(webSocket.sent, ['a', 'b'])
  t.same(webSocket.closes, [])
})

t.test('a WebSocket that is not open takes no frames', async (t) => {
  for (const readyState of [0, CLOSING, CLOSED]) {
    const webSocket = new FakeSocket()
    webSocket.readyState = readyState
    const socket = new HubSocket('1', webSocket, 1024)
    t.equal(socket.open, false)
    t.equal(socket.send('a'), false)
    t.same(webSocket.sent, [], `readyState ${readyState}`)
  }
})

t.test('a client whose send buffer would pass the bound is closed as slow', async (t) => {
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 100)
  webSocket.bufferedAmount = 90
  t.equal(socket.fits(10), true)
  t.equal(socket.send('x'.repeat(10)), true, 'exactly at the bound is still sent')
  webSocket.bufferedAmount = 91
  t.equal(socket.fits(10), false)
  t.equal(socket.open, true, 'asking whether a frame fits closes nothing')
  t.equal(socket.send('x'.repeat(10)), false, 'one byte past it is not')
  t.equal(webSocket.sent.length, 1)
  t.same(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT, reason: 'slow client: send buffer full' }])
  t.equal(webSocket.closes[0]?.code, 4008)
  t.equal(socket.open, false)
  webSocket.bufferedAmount = 0
  t.equal(socket.send('y'), false, 'nothing is sent after the close')
  t.equal(webSocket.sent.length, 1)
  t.equal(webSocket.closes.length, 1, 'closed once')
})

// Regression: the bound compared UTF-16 code units with bufferedAmount, which is in bytes.
t.test('the bound is in UTF-8 bytes: multi-byte text under it in UTF-16 units but over it in bytes closes as slow', async (t) => {
  const emoji = '😀'.repeat(20) // 40 UTF-16 code units, 80 bytes
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 100)
  webSocket.bufferedAmount = 30
  t.equal(socket.send(emoji), false, 'send: 30 + 80 bytes is past 100')
  t.match(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT }])
  t.same(webSocket.sent, [])
  t.equal(await new HubSocket('1', Object.assign(new FakeSocket(), { bufferedAmount: 30 }), 100).sendWritten(emoji), false, 'sendWritten')

  const roomy = new FakeSocket()
  roomy.bufferedAmount = 20
  t.equal(new HubSocket('1', roomy, 100).send(emoji), true, '20 + 80 bytes is exactly at the bound')
})

t.test('a frame sent with its byte length is bounded by it', async (t) => {
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 100)
  t.equal(socket.send('a', 101), false)
  t.match(webSocket.closes, [{ code: CloseCode.SLOW_CLIENT }])
})

t.test('a slow close tells onClosedAsSlow once; other closes do not', async (t) => {
  const slow = new HubSocket('1', Object.assign(new FakeSocket(), { bufferedAmount: 200 }), 100)
  let told = 0
  slow.onClosedAsSlow = () => { told++ }
  slow.send('x')
  slow.send('y')
  slow.closeAsSlow()
  slow.close(CloseCode.SLOW_CLIENT, 'again')
  t.equal(told, 1)

  const expired = new HubSocket('1', new FakeSocket(), 100)
  expired.onClosedAsSlow = () => { told++ }
  expired.close(CloseCode.TOKEN_EXPIRED, 'token expired')
  t.equal(told, 1)
})

t.test('sendWritten resolves once the frame was written out', async (t) => {
  const webSocket = new FakeSocket()
  webSocket.flushes = false
  const socket = new HubSocket('1', webSocket, 1024)
  let settled = false
  const written = socket.sendWritten('page').then((ok) => { settled = true; return ok })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(settled, false, 'waits for the socket')
  webSocket.unflushed.shift()?.()
  t.equal(await written, true)
  t.same(webSocket.sent, ['page'])
})

t.test('sendWritten resolves false when the frame was not sent, or the socket closed meanwhile', async (t) => {
  const closed = new FakeSocket()
  closed.readyState = CLOSED
  t.equal(await new HubSocket('1', closed, 1024).sendWritten('x'), false)

  const slow = new FakeSocket()
  slow.bufferedAmount = 2000
  t.equal(await new HubSocket('1', slow, 1024).sendWritten('x'), false)

  const closing = new FakeSocket()
  closing.flushes = false
  const socket = new HubSocket('1', closing, 1024)
  const written = socket.sendWritten('x')
  socket.close(CloseCode.GOING_AWAY, 'bye')
  closing.unflushed.shift()?.()
  t.equal(await written, false)
})

t.test('a corked socket lets its frames out once 16 KiB queued up, so a burst does not look slow', async (t) => {
  const webSocket = new FakeSocket()
  const transport = new FakeTransport()
  const socket = new HubSocket('1', webSocket, 64 * 1024, { transport })
  socket.cork()
  socket.cork()
  t.same(transport.events, ['cork'], 'corked once')
  socket.send('small')
  t.same(transport.events, ['cork'], 'under 16 KiB queued: held back')
  webSocket.bufferedAmount = 20 * 1024
  socket.send('big')
  socket.uncork()
  socket.uncork()
  t.same(transport.events, ['cork', 'uncork', 'cork', 'uncork'])
  t.same(webSocket.closes, [], 'not closed')
})

t.test('a socket without a transport to cork writes as usual', async (t) => {
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 1024)
  socket.cork()
  t.equal(socket.send('n1'), true)
  socket.uncork()
  t.same(webSocket.sent, ['n1'])
})

t.test('heartbeat: a peer that did not pong since the last beat is terminated', async (t) => {
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 1024)
  t.equal(socket.heartbeat(), true, 'the first beat pings')
  t.equal(webSocket.pings, 1)
  t.equal(webSocket.terminations, 0)
  t.equal(socket.heartbeat(), false, 'no pong: dropped on the next beat')
  t.equal(webSocket.terminations, 1)
  t.equal(webSocket.pings, 1, 'no ping to a dead peer')
})

t.test('heartbeat: a peer that pongs stays', async (t) => {
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 1024)
  for (let beat = 0; beat < 5; beat++) {
    t.equal(socket.heartbeat(), true)
    socket.markAlive()
  }
  t.equal(webSocket.pings, 5)
  t.equal(webSocket.terminations, 0)
})

t.test('heartbeat does not ping a socket that is not open', async (t) => {
  const webSocket = new FakeSocket()
  webSocket.readyState = CLOSING
  const socket = new HubSocket('1', webSocket, 1024)
  t.equal(socket.heartbeat(), true)
  t.equal(webSocket.pings, 0)
})

t.test('close sends the code once, and terminates a peer that does not finish the handshake', async (t) => {
  const clock = new FakeClock()
  const webSocket = new FakeSocket()
  const socket = new HubSocket('1', webSocket, 1024, { clock })
  socket.close(CloseCode.TOKEN_EXPIRED, 'token expired')
  socket.close(CloseCode.GOING_AWAY, 'again')
  t.same(webSocket.closes, [{ code: 4001, reason: 'token expired' }])
  t.equal(socket.open, false)
  t.equal(webSocket.terminations, 0, 'the peer gets time to answer the close')
  clock.advance(999)
  t.equal(webSocket.terminations, 0)
  clock.advance(1)
  t.equal(webSocket.terminations, 1, 'cut off after the grace')
})

t.test('close of a socket that is no longer open terminates it at once', async (t) => {
  const webSocket = new FakeSocket()
  webSocket.readyState = CLOSING
  const socket = new HubSocket('1', webSocket, 1024)
  socket.close(CloseCode.GOING_AWAY, 'bye')
  t.same(webSocket.closes, [])
  t.equal(webSocket.terminations, 1)
  t.equal(socket.open, false)
})

import t from 'tap'
import { CloseCode } from '../../server/hub/close-codes.js'
import { Hub, type HubOptions } from '../../server/hub/hub.js'
import { fakeHubSocket, OPEN } from '../helpers/fake-socket.js'

/** A hub whose heartbeat never fires within a test (heartbeats have their own tests). */
function quietHub (t: { teardown: (fn: () => void) => void }, options: Partial<HubOptions> = {}): Hub {
  const hub = new Hub({ heartbeatMs: 60_000, ...options })
  t.teardown(() => hub.stop())
  return hub
}

/** A hub that records its drops and its users going on- and offline. */
function watchedHub (t: { teardown: (fn: () => void) => void }): { hub: Hub, drops: string[], events: string[] } {
  const drops: string[] = []
  const events: string[] = []
  const hub = quietHub(t, {
    onDrop: (why) => drops.push(why),
    onUserOnline: (userId) => events.push(`online ${userId}`),
    onUserOffline: (userId) => events.push(`offline ${userId}`)
  })
  return { hub, drops, events }
}

t.test('counts follow adds and removes; a user\'s set goes with their last socket', async (t) => {
  const { hub, events } = watchedHub(t)
  const first = fakeHubSocket('1')
  const second = fakeHubSocket('1')
  const other = fakeHubSocket('2')
  t.equal(hub.connectionCount, 0)
  hub.add(first.socket)
  hub.add(second.socket)
  hub.add(other.socket)
  hub.add(first.socket)
  t.equal(hub.connectionCount, 3, 'adding the same socket twice counts it once')
  t.equal(hub.connectionsOf('1'), 2)

  hub.remove(first.socket)
  t.equal(hub.connectionsOf('1'), 1)
  t.same(events, ['online 1', 'online 2'], 'a socket of user 1 is left')

  hub.remove(second.socket)
  t.same(events, ['online 1', 'online 2', 'offline 1'], 'the user with no sockets left is gone')
  t.equal(hub.connectionsOf('1'), 0)
  t.equal(hub.connectionCount, 1)

  hub.remove(second.socket)
  hub.remove(fakeHubSocket('9').socket)
  t.equal(hub.connectionCount, 1, 'removing what is not there changes nothing')
  t.same(events, ['online 1', 'online 2', 'offline 1'])
})

t.test('a socket closed as slow is dropped at once and counted once, also when the socket close follows', async (t) => {
  const { hub, drops } = watchedHub(t)
  const fast = fakeHubSocket('1', 100)
  const slow = fakeHubSocket('1', 100)
  hub.add(fast.socket)
  hub.add(slow.socket)
  slow.webSocket.bufferedAmount = 95
  t.equal(slow.socket.send('x'.repeat(10)), false)
  t.same(slow.webSocket.closes.map((close) => close.code), [4008])
  t.same(drops, ['slow'])
  t.equal(hub.connectionsOf('1'), 1, 'the slow socket was dropped')
  t.equal(hub.connectionCount, 1)
  slow.socket.send('y')
  hub.remove(slow.socket) // what the WebSocket's close event does
  t.same(drops, ['slow'], 'dropped once')
  t.equal(fast.socket.send('x'.repeat(10)), true, 'the other socket goes on')
})

// Regression: the catch-up wrote past the hub's own sends, and a slow close there never reached
// the slow-client metric.
t.test('a socket closed as slow by whoever writes to it counts once and leaves the hub', async (t) => {
  const { hub, drops, events } = watchedHub(t)
  const catchingUp = fakeHubSocket('1', 100)
  const holding = fakeHubSocket('2', 100)
  hub.add(catchingUp.socket)
  hub.add(holding.socket)
  catchingUp.webSocket.bufferedAmount = 95
  t.equal(catchingUp.socket.send('x'.repeat(10)), false, 'the replay frame past the bound is refused')
  t.same(catchingUp.webSocket.closes.map((close) => close.code), [4008])
  holding.socket.closeAsSlow() // what a tab does with a held frame past the bound
  t.same(drops, ['slow', 'slow'], 'one count per slow socket')
  t.equal(hub.connectionsOf('1'), 0, 'dropped from the hub at once')
  t.same(events, ['online 1', 'online 2', 'offline 1', 'offline 2'], 'a socket dropped as slow takes its user offline too')
  hub.remove(catchingUp.socket) // what the WebSocket's close event does
  hub.remove(holding.socket)
  t.same(drops, ['slow', 'slow'], 'not counted again')
  t.equal(hub.connectionCount, 0)
})

t.test('closeAll closes every socket with the given code', async (t) => {
  const hub = quietHub(t)
  const tabs = [fakeHubSocket('1'), fakeHubSocket('1'), fakeHubSocket('2'), fakeHubSocket('3')]
  for (const { socket } of tabs) hub.add(socket)
  hub.closeAll(CloseCode.GOING_AWAY, 'server shutting down')
  for (const { webSocket } of tabs) t.same(webSocket.closes, [{ code: 1001, reason: 'server shutting down' }])
})

// Regression: an upgrade whose token check was still running when SIGTERM came was added after
// closeAll, never closed, and held server.close() until the grace period ran out.
t.test('a socket added after closeAll is closed at once with 1001 and not kept', async (t) => {
  const { hub, events } = watchedHub(t)
  hub.add(fakeHubSocket('1').socket)
  hub.closeAll(CloseCode.GOING_AWAY, 'server shutting down')
  const late = fakeHubSocket('1')
  hub.add(late.socket)
  t.same(late.webSocket.closes, [{ code: 1001, reason: 'server shutting down' }], 'closed at once')
  t.equal(late.socket.open, false)
  t.equal(hub.connectionsOf('1'), 1, 'not kept: only the socket from before the close')
  t.equal(hub.connectionCount, 1)
  t.equal(late.socket.send('too late'), false)
  t.same(late.webSocket.sent, [])
  hub.add(fakeHubSocket('3').socket)
  t.same(events, ['online 1'], 'a socket refused while closing brings nobody online')
})

t.test('heartbeat: a socket that does not pong is terminated on the next beat and dropped as dead', async (t) => {
  const drops: string[] = []
  const hub = new Hub({ heartbeatMs: 20, onDrop: (why) => drops.push(why) })
  t.teardown(() => hub.stop())
  // The hub's timer is unref'd (it must not keep a gateway alive); this keeps the test alive meanwhile.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))

  const alive = fakeHubSocket('1')
  const dead = fakeHubSocket('1')
  const other = fakeHubSocket('2')
  alive.webSocket.onPing = () => alive.socket.markAlive()
  other.webSocket.onPing = () => other.socket.markAlive()
  for (const { socket } of [alive, dead, other]) hub.add(socket)

  await dead.webSocket.terminated
  t.equal(dead.webSocket.pings, 1, 'it was pinged once, then cut off')
  t.same(drops, ['dead'])
  t.equal(hub.connectionsOf('1'), 1, 'the dead socket left the hub')
  t.equal(hub.connectionCount, 2)
  t.ok(alive.webSocket.pings >= 2, 'the answering socket was pinged on every beat')
  t.equal(alive.webSocket.readyState, OPEN, 'and stays')
  t.equal(other.webSocket.readyState, OPEN)
})

t.test('a user whose only socket died goes offline', async (t) => {
  const events: string[] = []
  const hub = new Hub({ heartbeatMs: 20, onUserOffline: (userId) => events.push(`offline ${userId}`) })
  t.teardown(() => hub.stop())
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const dead = fakeHubSocket('7')
  hub.add(dead.socket)
  await dead.webSocket.terminated
  t.same(events, ['offline 7'])
  t.equal(hub.connectionCount, 0)
})

t.test('heartbeat: a round over more sockets than one turn takes is spread over turns, and reaches every socket once', async (t) => {
  const hub = new Hub({ heartbeatMs: 20 })
  t.teardown(() => hub.stop())
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const sockets = Array.from({ length: 1000 }, (_, i) => fakeHubSocket(String(i % 300)))
  let pinged = 0
  let roundDone: () => void = () => {}
  const round = new Promise<void>((resolve) => { roundDone = resolve })
  // Work queued by the round's first ping runs before its last ping: the round yields to the loop.
  let pingedBeforeOtherWork: number | undefined
  for (const { socket, webSocket } of sockets) {
    webSocket.onPing = () => {
      if (pinged === 0) setImmediate(() => { pingedBeforeOtherWork = pinged })
      if (++pinged === sockets.length) roundDone()
      socket.markAlive()
    }
    hub.add(socket)
  }
  await round
  t.ok(pingedBeforeOtherWork !== undefined && pingedBeforeOtherWork < sockets.length, `other work ran after ${pingedBeforeOtherWork ?? '?'} of ${sockets.length} pings`)
  t.ok(sockets.every(({ webSocket }) => webSocket.pings === 1), 'every socket was pinged once in the round')
  t.equal(hub.connectionCount, sockets.length, 'none dropped: each answered its ping')
})

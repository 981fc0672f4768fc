import t, { type Test } from 'tap'
import { Connection, type ConnectionStatus } from '../../client/connection.js'
import type { Dial } from '../../client/transport.js'
import type { ReadyFrame } from '../../client/types.js'
import { FakeNetwork, noJitter } from '../helpers/fake-transport.js'

const READY: ReadyFrame = { type: 'ready', user: { id: '1', name: 'Emma' }, unread: 0, cursor: 'e1.0', seq: 0, rev: 0 }
const REFUSED = { code: 1006, reason: '', opened: false }
const DROPPED = { code: 1006, reason: '', opened: true }

interface Rig {
  network: FakeNetwork
  connection: Connection
  statuses: ConnectionStatus[]
  /** Resolves at the first status in `state` from now on. */
  reaches: (state: ConnectionStatus['state']) => Promise<ConnectionStatus>
  renewals: () => number
  token: { value: string }
}

function rig (t: Test, renew: () => Promise<boolean> = async () => false, withWebSocket = true): Rig {
  noJitter(t)
  const network = new FakeNetwork()
  const statuses: ConnectionStatus[] = []
  const token = { value: 'token-1' }
  let renewals = 0
  const waiters = new Set<(status: ConnectionStatus) => void>()
  const reaches = (state: ConnectionStatus['state']): Promise<ConnectionStatus> => new Promise((resolve) => {
    const waiter = (status: ConnectionStatus): void => {
      if (status.state !== state) return
      waiters.delete(waiter)
      resolve(status)
    }
    waiters.add(waiter)
  })
  const connection = new Connection({
    transports: { ...(withWebSocket ? { websocket: network.transport('websocket') } : {}), sse: network.transport('sse') },
    dial: (): Dial => ({ token: token.value, since: null }),
    onFrame: () => {},
    onStatus: (status) => {
      statuses.push(status)
      for (const waiter of [...waiters]) waiter(status)
    },
    renewToken: () => { renewals++; return renew() }
  })
  t.teardown(() => connection.stop())
  return { network, connection, statuses, reaches, renewals: () => renewals, token }
}

t.test('a WebSocket that never reaches ready twice in a row: the next attempts go over SSE, and stay there', async (t) => {
  const { network, connection, statuses } = rig(t)
  connection.start()
  ;(await network.attempt(0)).end(REFUSED)
  ;(await network.attempt(1)).end(REFUSED)
  const sse = await network.attempt(2)
  t.same(network.attempts.map(({ kind }) => kind), ['websocket', 'websocket', 'sse'])
  sse.frame(READY)
  t.equal(connection.state, 'connected')
  t.match(statuses.at(-1), { state: 'connected', transport: 'sse' }, 'the status names the transport')
  sse.end(DROPPED)
  t.equal((await network.attempt(3)).kind, 'sse', 'after a drop, SSE again: WebSockets do not get through here')
})

t.test('a WebSocket that reached ready between two failures is not given up on', async (t) => {
  const { network, connection } = rig(t)
  connection.start()
  ;(await network.attempt(0)).end(REFUSED)
  const second = await network.attempt(1)
  second.frame(READY)
  second.end(DROPPED)
  ;(await network.attempt(2)).end(REFUSED)
  t.same(network.attempts.map(({ kind }) => kind), ['websocket', 'websocket', 'websocket'])
  const fourth = await network.attempt(3)
  t.equal(fourth.kind, 'websocket', 'one miss since the last ready')
  fourth.end(REFUSED)
  t.equal((await network.attempt(4)).kind, 'sse', 'two in a row since the last ready')
})

t.test('when SSE fails too before it ever worked, the gateway is what is down: WebSocket is tried again', async (t) => {
  const { network, connection } = rig(t)
  connection.start()
  for (const index of [0, 1, 2]) (await network.attempt(index)).end(REFUSED)
  const fourth = await network.attempt(3)
  t.same(network.attempts.map(({ kind }) => kind), ['websocket', 'websocket', 'sse', 'websocket'])
  fourth.frame(READY)
  t.equal(connection.state, 'connected', 'the gateway is back, over WebSocket')
})

t.test('without a WebSocket class the connection uses SSE from the first attempt', async (t) => {
  const { network, connection } = rig(t, undefined, false)
  connection.start()
  t.equal((await network.attempt(0)).kind, 'sse')
})

t.test('an SSE reconnect refused with 401 renews the token, and the next attempt carries the new one', async (t) => {
  const { network, connection, renewals, token } = rig(t, async () => { token.value = 'token-2'; return true }, false)
  connection.start()
  const first = await network.attempt(0)
  first.frame(READY)
  first.end({ code: 4001, reason: 'token expired', opened: true })
  const second = await network.attempt(1)
  t.equal(renewals(), 1)
  t.equal(second.dial.token, 'token-2', 'a fresh token, not the spent one')
  second.end({ code: 4001, reason: 'Token expired', opened: false, status: 401 })
  const third = await network.attempt(2)
  t.equal(renewals(), 2, 'a refusal of the stream itself (HTTP 401) renews too')
  t.equal(third.kind, 'sse')
})

t.test('a 401 that cannot be renewed stops the connection with the reason', async (t) => {
  const { network, connection, reaches } = rig(t, async () => false, false)
  connection.start()
  const stopped = reaches('disconnected')
  ;(await network.attempt(0)).end({ code: 4001, reason: 'Token expired', opened: false, status: 401 })
  t.match(await stopped, { error: 'Your token expired, sign in again' })
  t.equal(network.attempts.length, 1, 'no further attempt')
})

t.test('any other refusal of the stream (4xx) stops it; a 5xx is retried', async (t) => {
  const { network, connection, reaches } = rig(t, undefined, false)
  connection.start()
  const stopped = reaches('disconnected')
  ;(await network.attempt(0)).end({ code: 1006, reason: 'gateway down', opened: false, status: 503 })
  ;(await network.attempt(1)).end({ code: 1006, reason: 'Origin not allowed', opened: false, status: 403 })
  t.match(await stopped, { error: 'Refused by the server: Origin not allowed (403)' })
})

t.test('a close code 4500–4999 stops the connection for good', async (t) => {
  const { network, connection, reaches } = rig(t)
  connection.start()
  const first = await network.attempt(0)
  first.frame(READY)
  const stopped = reaches('disconnected')
  first.end({ code: 4500, reason: 'policy', opened: true })
  t.match(await stopped, { error: 'Closed by the server: policy (4500)' })
})

t.test('states: disconnected → connecting → connected → connecting (retrying) after a drop', async (t) => {
  const { network, connection, statuses } = rig(t)
  t.equal(connection.state, 'disconnected')
  connection.start()
  const first = await network.attempt(0)
  first.frame(READY)
  first.end(DROPPED)
  await network.attempt(1)
  const changes = statuses.map(({ state, retrying }) => `${state}${retrying ? ' (retrying)' : ''}`).filter((label, i, all) => label !== all[i - 1])
  t.same(changes, ['connecting', 'connected', 'connecting (retrying)'])
  connection.stop()
  t.equal(connection.state, 'disconnected')
  t.equal(network.attempts[1]!.closed, true, 'stop closes the attempt')
})

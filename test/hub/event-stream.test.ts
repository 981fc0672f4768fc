import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { notificationFrame, pingFrame, readyFrame, syncedFrame, unreadFrame } from '../../server/feed/frames.js'
import { CloseCode } from '../../server/hub/close-codes.js'
import { EventStream } from '../../server/hub/event-stream.js'
import { HubSocket } from '../../server/hub/socket.js'
import { followNotification } from '../../server/notification.js'
import { EventStreamClient } from '../helpers/sse-client.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

/** A server whose one response becomes an EventStream, and a client reading it. */
async function streamPair (t: Test, resumeFrom?: string): Promise<{ stream: EventStream, response: ServerResponse, client: EventStreamClient }> {
  let opened!: (pair: { stream: EventStream, response: ServerResponse }) => void
  const served = new Promise<{ stream: EventStream, response: ServerResponse }>((resolve) => { opened = resolve })
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.flushHeaders()
    opened({ stream: new EventStream(response, resumeFrom), response })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const { port } = server.address() as AddressInfo
  const client = await EventStreamClient.connect(t, `http://127.0.0.1:${port}`, '/')
  return { ...await served, client }
}

t.test('each frame is one event: its type as the event, its JSON as data, the cursor to resume after as id', async (t) => {
  const { stream, client } = await streamPair(t)
  const notification = JSON.stringify(followNotification(bruno, emma))
  const frames = [
    readyFrame(emma, 'e.5', { seq: 5, rev: 0, unread: 1 }, 0, 30_000),
    notificationFrame(notification, 'e.6', 6, { unread: 2, rev: 0 }),
    unreadFrame(0, 1),
    pingFrame({ seq: 6, rev: 1, unread: 0 }),
    syncedFrame('e.6', 6, 1, true)
  ]
  for (const frame of frames) stream.send(frame)
  await client.until('five events', () => client.events.length === 5)
  t.same(client.events.map(({ event, id }) => [event, id]), [['ready', 'e.5'], ['notification', 'e.6'], ['unread', undefined], ['ping', undefined], ['synced', 'e.6']])
  t.same(client.events.map(({ data }) => data), frames, 'the frames as they are')
  t.equal(client.raw, `event: ready\nid: e.5\ndata: ${frames[0]!}\n\nevent: notification\nid: e.6\ndata: ${frames[1]!}\n\nevent: unread\ndata: ${frames[2]!}\n\n` +
    `event: ping\ndata: ${frames[3]!}\n\nevent: synced\nid: e.6\ndata: ${frames[4]!}\n\n`, 'byte for byte')
})

t.test('ready carries the resume point as its id when the client resumes: a drop during the replay resumes from there', async (t) => {
  const { stream, client } = await streamPair(t, 'e.2')
  stream.send(readyFrame(emma, 'e.5', { seq: 5, rev: 0, unread: 1 }, 0, 30_000))
  t.equal((await client.next()).id, 'e.2')
})

t.test('a notification stored with line breaks (an external producer\'s JSON) is sent as several data lines that read back the same', async (t) => {
  const { stream, client } = await streamPair(t)
  const notification = followNotification(bruno, emma)
  const [first, second, ...rest] = JSON.stringify(notification, null, 2).split('\n')
  const stored = `${first!}\r\n${second!}\r${rest.join('\n')}`
  stream.send(notificationFrame(stored, 'e.1', 1))
  const event = await client.next()
  t.match(client.raw, /^event: notification\nid: e\.1\ndata: \{"type":"notification","notification":\{\ndata: {3}"id"/, 'one data field per line')
  t.notMatch(client.raw, /\r/, 'no carriage return left to end a field')
  t.same(event.frame, { type: 'notification', notification, cursor: 'e.1', seq: 1 })
})

t.test('a heartbeat is a comment line, answered once it left the process, behind everything queued before it', async (t) => {
  const { stream, response, client } = await streamPair(t)
  let pongs = 0
  let answered = (): void => {}
  stream.onPong = () => {
    pongs++
    answered()
  }
  const nextPong = (): Promise<void> => new Promise((resolve) => { answered = resolve })
  let pong = nextPong()
  stream.ping()
  await client.until('a comment', () => client.comments === 1)
  t.equal(client.raw, ': heartbeat\n\n')
  t.equal(client.events.length, 0, 'no event')
  await pong
  t.equal(pongs, 1, 'answered')

  // A peer that stopped reading: far more than loopback's socket buffers hold is queued before the heartbeat.
  client.response.pause()
  const backlog = `: ${'x'.repeat(1024 * 1024)}\n\n`
  for (let i = 0; i < 32; i++) response.write(backlog)
  pong = nextPong()
  stream.ping()
  t.ok(stream.bufferedAmount > 8 * 1024 * 1024, `its unsent bytes are counted (${stream.bufferedAmount})`)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(pongs, 1, 'not answered while the peer does not read')
  client.response.resume()
  await pong
  t.equal(pongs, 2, 'answered once the peer reads again')
  await client.until('the backlog and the heartbeat', () => client.comments === 34, 30_000)
})

t.test('close sends a close event with the code and reason, then ends the response; terminate cuts it', async (t) => {
  const { stream, client } = await streamPair(t)
  const socket = new HubSocket('1', stream, 1024 * 1024)
  t.equal(socket.open, true)
  socket.close(CloseCode.GOING_AWAY, 'server shutting down')
  t.equal(socket.open, false, 'closed at once for the hub')
  t.equal(stream.readyState, 2, 'closing')
  stream.close(CloseCode.NORMAL, 'again')
  await client.ended
  t.same(client.events.map(({ event, data }) => [event, data]), [['close', '{"type":"close","code":1001,"reason":"server shutting down"}']], 'one close event, the last')
  t.equal(stream.readyState, 3, 'closed')

  const cut = await streamPair(t)
  cut.stream.terminate()
  await cut.client.ended
  t.equal(cut.stream.readyState, 3)
  t.equal(cut.client.events.length, 0, 'no close event')
})

import { connect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { type FeedEvents, NotifyClient } from '../../client/index.js'
import type { TransportKind } from '../../client/transport.js'
import { CloseCode } from '../../server/hub/close-codes.js'
import { follow, signIn } from '../helpers/clients.js'
import { type Gateway, startGateway, tempDir, testEnv } from '../helpers/gateway.js'

const SECRET = 'client-library-test-secret-long-enough'

/**
 * A TCP relay in front of the gateway, so the client keeps one base URL while the gateway behind
 * it is replaced (a restart on another port). With no gateway behind it, connections are cut.
 */
async function relay (t: Test): Promise<{ url: string, to: (port: number | null) => void }> {
  let target: number | null = null
  const open = new Set<Socket>()
  const server = createServer((socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => socket.destroy())
    if (target === null) return socket.destroy()
    const upstream = connect(target, '127.0.0.1')
    upstream.on('error', () => socket.destroy())
    socket.on('close', () => upstream.destroy())
    upstream.on('close', () => socket.destroy())
    socket.pipe(upstream).pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of open) socket.destroy()
    server.close(() => resolve())
  }))
  const address = server.address()
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`,
    to: (port) => { target = port }
  }
}

function portOf (gateway: Gateway): number {
  return Number(new URL(gateway.url).port)
}

/** The first `type` event from now on that `accept` takes. */
function next<K extends keyof FeedEvents> (client: NotifyClient, type: K, accept: (event: FeedEvents[K]) => boolean = () => true): Promise<FeedEvents[K]> {
  return new Promise((resolve) => {
    const stop = client.on(type, (event) => {
      if (!accept(event)) return
      stop()
      resolve(event)
    })
  })
}

async function followed (url: string, token: string, followeeId: string): Promise<string> {
  const response = await follow(url, token, followeeId)
  if (response.status !== 202) throw new Error(`follow answered ${response.status}`)
  return ((await response.json()) as { notification: { id: string } }).notification.id
}

for (const transport of ['websocket', 'sse'] as const satisfies readonly TransportKind[]) {
  t.test(`a Node app on the client library over ${transport}: live delivery, resume after a drop and a gateway restart, history, mark read`, async (t) => {
    const dataDir = tempDir(t)
    const env = { ...testEnv(dataDir), AUTH_SECRET: SECRET }
    let gateway = await startGateway(t, { dataDir, env })
    const front = await relay(t)
    front.to(portOf(gateway))
    const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])

    const client = new NotifyClient({ baseUrl: front.url, token: () => bruno, WebSocket: transport === 'websocket' ? WebSocket : null })
    t.teardown(() => client.stop())
    const shown: Array<{ id: string, live: boolean }> = []
    client.on('notification', ({ notification, live }) => shown.push({ id: notification.id, live }))
    t.same((await client.history()).items, [], 'an empty feed to begin with')

    const connected = next(client, 'status', ({ state }) => state === 'connected')
    client.start()
    t.match(await connected, { transport }, `connected over ${transport}`)

    const arrives = (id: string): Promise<FeedEvents['notification']> => next(client, 'notification', ({ notification }) => notification.id === id)
    const first = await followed(gateway.url, emma, '2')
    t.match(await arrives(first), { live: true, seq: 1 }, 'delivered live')

    const back = next(client, 'status', ({ state }) => state === 'connected')
    gateway.services.hub.disconnectAll(CloseCode.GOING_AWAY, 'dropped by the test')
    await back
    const second = await followed(gateway.url, emma, '2')
    t.match(await arrives(second), { live: true, seq: 2 }, 'after a drop, live again')

    const lost = next(client, 'status', ({ state }) => state === 'connecting')
    front.to(null)
    await gateway.close()
    await lost
    gateway = await startGateway(t, { dataDir, env })
    const missed = [await followed(gateway.url, emma, '2'), await followed(gateway.url, emma, '2')]
    const caughtUp = arrives(missed[1]!)
    front.to(portOf(gateway))
    t.match(await caughtUp, { live: false, seq: 4 }, 'after the restart, what was missed comes as the catch-up from the last cursor')
    t.same(shown.map(({ id }) => id), [first, second, ...missed], 'everything once, in order')
    t.equal(client.unread, 4)

    const page = await client.history(null, 3)
    t.same(page.items.map(({ id }) => id), [...missed].reverse().concat(second), 'history, newest first, one page')
    t.same((await client.history(page.nextCursor)).items.map(({ id }) => id), [first], 'and the next page')

    const marked = await client.markAllRead()
    t.match(marked, { upTo: { seq: 4 }, unread: 0 }, 'marked read up to the newest')
    t.equal((await client.history()).unread, 0, 'the gateway agrees')
  })
}

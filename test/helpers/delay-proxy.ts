import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import type { TestContext } from './gateway.js'

export interface DelayProxy {
  port: number
  /** How long each chunk from the client waits before it goes on; change it at any time. */
  delayMs: number
}

/**
 * A TCP proxy on 127.0.0.1 to `upstreamPort` that holds every chunk a client sends for
 * `delayMs` before passing it on (answers come back at once): a slow link to a server, e.g. Redis.
 * Closed with the test.
 */
export async function startDelayProxy (t: TestContext, upstreamPort: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>()
  const proxy: DelayProxy = { port: 0, delayMs }
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {})
    }
    // One timer for the queue, in order: a chunk never overtakes an earlier one, even when the
    // delay shrinks meanwhile (timers due in the same millisecond fire in no set order).
    const queue: Array<{ at: number, chunk: Buffer }> = []
    let timer: NodeJS.Timeout | undefined
    const release = (): void => {
      timer = undefined
      while (queue.length > 0 && queue[0]!.at <= performance.now()) upstream.write(queue.shift()!.chunk)
      if (queue.length > 0) timer = setTimeout(release, queue[0]!.at - performance.now())
    }
    client.on('data', (chunk: Buffer) => {
      queue.push({ at: Math.max(performance.now() + proxy.delayMs, queue.at(-1)?.at ?? 0), chunk })
      timer ??= setTimeout(release, queue[0]!.at - performance.now())
    })
    client.on('close', () => clearTimeout(timer))
    upstream.on('data', (chunk) => client.write(chunk))
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.port = (server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return proxy
}

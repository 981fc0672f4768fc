// A TCP proxy of the tests' own in front of a real server (Redis, PostgreSQL, a gateway), to fail
// the way networks do without telling either end: a link that goes silent (a NAT or a balancer
// forgot the flow: nothing passes either way, and neither end is closed or reset), and a reply
// lost with its connection after the server acted on the request.
import { connect, createServer, type Socket } from 'node:net'
import type { TestContext } from './gateway.js'

interface Link {
  client: Socket
  server: Socket
  silent: boolean
  /** The client sent the `after` text of the armed cut since its last `marker`. */
  primed: boolean
  /** The server's next bytes on this link are dropped with the link. */
  cutting: boolean
}

interface Cut {
  marker: string
  after: string
  done: () => void
}

export interface TcpProxy {
  /** Clients connect to 127.0.0.1 on this port. */
  readonly port: number
  /** Client connections accepted so far. */
  readonly accepted: number
  /**
   * Every open link goes silent for good: bytes either way are read and dropped, closes are not
   * passed on. Links opened later pass as usual, or, with `later`, go silent too.
   */
  silence (options?: { later?: boolean }): void
  /**
   * On the next link whose client sends `marker` after `after` (e.g. a COMMIT after an INSERT),
   * `marker` reaches the server and the link is cut once the server answers, before the answer
   * reaches the client. Resolves once that happened.
   */
  cutReplyTo (marker: string, after: string): Promise<void>
  /**
   * New links go to `target` from now on (a server restarted on another port), or, with null, are
   * cut as they come (the server is down). Open links are left as they are.
   */
  retarget (target: { host: string, port: number } | null): void
}

/** Starts a proxy to `target` on a free loopback port; it stops at t's teardown. */
export async function startTcpProxy (t: TestContext, first: { host: string, port: number }): Promise<TcpProxy> {
  let target: { host: string, port: number } | null = first
  const links = new Set<Link>()
  let accepted = 0
  let cut: Cut | undefined
  let silentFromNowOn = false
  const server = createServer((client) => {
    accepted++
    if (target === null) return client.destroy()
    const link: Link = { client, server: connect(target.port, target.host), silent: silentFromNowOn, primed: false, cutting: false }
    links.add(link)
    const drop = (): void => {
      links.delete(link)
      link.client.destroy()
      link.server.destroy()
    }
    for (const socket of [link.client, link.server]) {
      socket.setNoDelay(true)
      socket.on('error', () => {})
      socket.on('close', () => { if (!link.silent) drop() })
    }
    link.client.on('data', (data) => {
      if (link.silent) return
      if (cut !== undefined) watchForCut(link, cut, data.toString('latin1'))
      link.server.write(data)
    })
    link.server.on('data', (data) => {
      if (link.silent) return
      if (link.cutting) {
        drop()
        const done = cut?.done
        cut = undefined
        done?.()
        return
      }
      link.client.write(data)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  t.teardown(async () => {
    for (const link of links) {
      link.client.destroy()
      link.server.destroy()
    }
    links.clear()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port,
    get accepted () { return accepted },
    silence (options = {}) {
      for (const link of links) link.silent = true
      silentFromNowOn = options.later === true
    },
    cutReplyTo (marker, after) {
      return new Promise((resolve) => { cut = { marker, after, done: resolve } })
    },
    retarget (next) {
      target = next
    }
  }
}

function watchForCut (link: Link, cut: Cut, text: string): void {
  if (text.includes(cut.after)) link.primed = true
  if (!text.includes(cut.marker)) return
  if (link.primed) link.cutting = true
  link.primed = false
}

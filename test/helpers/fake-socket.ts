import type { Frame } from '../../server/feed/frames.js'
import { HubSocket, type HubSocketOptions, type FeedConnection } from '../../server/hub/socket.js'
import type { Notification } from '../../server/notification.js'
import { Waiters } from './waiters.js'

export const OPEN = 1
export const CLOSING = 2
export const CLOSED = 3

/**
 * A WebSocket that records what the hub and the feed do to it, like `ws` would see it, and lets a
 * test wait for it (`until`). `onPing` lets a test play the peer; `flushes = false` keeps the
 * written callbacks pending.
 */
export class FakeSocket implements FeedConnection {
  readyState = OPEN
  bufferedAmount = 0
  readonly sent: string[] = []
  readonly closes: Array<{ code: number, reason: string }> = []
  pings = 0
  terminations = 0
  onPing: (() => void) | undefined
  flushes = true
  readonly unflushed: Array<(error?: Error) => void> = []
  readonly terminated: Promise<void>
  #terminate: () => void = () => {}
  readonly #waiters = new Waiters()

  constructor () {
    this.terminated = new Promise((resolve) => { this.#terminate = resolve })
  }

  send (data: string, written?: (error?: Error) => void): void {
    this.sent.push(data)
    this.#waiters.wake()
    if (written === undefined) return
    if (this.flushes) written()
    else this.unflushed.push(written)
  }

  ping (): void {
    this.pings++
    this.onPing?.()
  }

  close (code: number, reason: string): void {
    this.closes.push({ code, reason })
    this.readyState = CLOSING
    this.#waiters.wake()
  }

  terminate (): void {
    this.terminations++
    this.readyState = CLOSED
    this.#terminate()
  }

  /** What was sent, read as the gateway's frames. */
  get frames (): Array<Frame<Notification>> {
    return this.sent.map((text) => JSON.parse(text) as Frame<Notification>)
  }

  /** The seqs of the notification frames sent, in order. */
  get seqs (): number[] {
    return this.frames.flatMap((frame) => frame.type === 'notification' ? [frame.seq] : [])
  }

  /** Resolves once `done()` holds, checked after each send and close; rejects after `timeoutMs`. */
  async until (what: string, done: () => boolean, timeoutMs?: number): Promise<void> {
    await this.#waiters.until(() => `${what} (sent ${JSON.stringify(this.seqs)})`, done, timeoutMs)
  }
}

/** The TCP socket under a FakeSocket: records cork and uncork. */
export class FakeTransport {
  readonly events: string[] = []
  cork (): void { this.events.push('cork') }
  uncork (): void { this.events.push('uncork') }
}

/**
 * One open tab's socket as the hub and the feed hold it: a HubSocket of `userId` over a FakeSocket,
 * with the send bound `maxBufferedBytes`. The tests of the hub add it to a Hub; those of the feed
 * give it a Tab.
 */
export function fakeHubSocket (userId = '1', maxBufferedBytes = 1024, options: HubSocketOptions = {}): { webSocket: FakeSocket, socket: HubSocket } {
  const webSocket = new FakeSocket()
  return { webSocket, socket: new HubSocket(userId, webSocket, maxBufferedBytes, options) }
}

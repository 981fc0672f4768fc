import { WebSocket, type ClientOptions } from 'ws'
import type { Frame as GatewayFrame, NotificationFrame as GatewayNotificationFrame } from '../../server/feed/frames.js'
import type { Notification } from '../../server/notification.js'

const SIGN_IN_TIMEOUT_MS = 10_000

/** Signs in through the dev route and returns the token. */
export async function signIn (url: string, userId: string): Promise<string> {
  const response = await fetch(`${url}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
    signal: AbortSignal.timeout(SIGN_IN_TIMEOUT_MS)
  })
  if (response.status !== 201) throw new Error(`sign-in as ${userId} answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { token: string }).token
}

export async function follow (url: string, token: string, followeeId: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/api/follows`, {
    method: 'POST',
    ...(signal === undefined ? {} : { signal }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify({ followeeId })
  })
}

/**
 * Opens a user's feed (GET /ws) as a client does: `since` resumes after a cursor; `options` go to
 * `ws` (e.g. `localAddress`). Listen for frames before the socket opens: the first may come at once.
 */
export function openFeedSocket (url: string, token: string, options: ClientOptions & { since?: string } = {}): WebSocket {
  const { since, ...socketOptions } = options
  const query = new URLSearchParams({ token, ...(since === undefined ? {} : { since }) })
  return new WebSocket(`${url.replace(/^http/, 'ws')}/ws?${query.toString()}`, { perMessageDeflate: false, ...socketOptions })
}

/** The gateway's frames (server/feed/frames.ts), their notifications read as the server's type. */
export type Frame = GatewayFrame<Notification>
export type NotificationFrame = GatewayNotificationFrame<Notification>

/**
 * A WebSocket client for tests: frames are queued as they arrive and read in order with
 * `next()`, which waits for one to come (bounded by `timeoutMs`).
 */
export class FeedClient {
  readonly socket: WebSocket
  readonly #frames: Frame[] = []
  readonly #waiters: Array<(frame: Frame) => void> = []
  readonly closed: Promise<{ code: number, reason: string }>

  private constructor (socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame
      const waiter = this.#waiters.shift()
      if (waiter === undefined) this.#frames.push(frame)
      else waiter(frame)
    })
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  static async connect (url: string, token: string, since?: string): Promise<FeedClient> {
    const socket = openFeedSocket(url, token, since === undefined ? {} : { since })
    const client = new FeedClient(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    return client
  }

  get queued (): number {
    return this.#frames.length
  }

  next (timeoutMs = 10_000): Promise<Frame> {
    const frame = this.#frames.shift()
    if (frame !== undefined) return Promise.resolve(frame)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(new Error(`no frame within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter = (received: Frame): void => {
        clearTimeout(timer)
        resolve(received)
      }
      this.#waiters.push(waiter)
    })
  }

  /** Reads frames until one of `type` arrives, and returns it. */
  async nextOf<T extends Frame['type']> (type: T, timeoutMs = 10_000): Promise<Extract<Frame, { type: T }>> {
    for (;;) {
      const frame = await this.next(timeoutMs)
      if (frame.type === type) return frame as Extract<Frame, { type: T }>
    }
  }

  close (): void {
    this.socket.terminate()
  }
}

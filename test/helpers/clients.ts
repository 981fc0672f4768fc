import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { WebSocket, type ClientOptions } from 'ws'
import type { Frame as GatewayFrame, NotificationFrame as GatewayNotificationFrame } from '../../server/feed/frames.js'
import type { Notification } from '../../server/notification.js'
import type { TestContext } from './gateway.js'
import { Waiters } from './waiters.js'

const SIGN_IN_TIMEOUT_MS = 10_000
const FRAME_TIMEOUT_MS = 10_000

/**
 * Signs in through the dev route, over HTTP (`gateway` is its URL) or `app.inject`; returns the
 * token. With `service`, a backend's token named `userId` (signed only for callers on this machine).
 */
export async function signIn (gateway: string | FastifyInstance, userId: string, { service = false } = {}): Promise<string> {
  const body = service ? { service: userId } : { userId }
  if (typeof gateway !== 'string') {
    const response = await gateway.inject({ method: 'POST', url: '/api/sessions', payload: body })
    if (response.statusCode !== 201) throw new Error(`sign-in as ${userId} answered ${response.statusCode}: ${response.body}`)
    return response.json<{ token: string }>().token
  }
  const response = await fetch(`${gateway}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
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

/** The gateway's /readyz answer: its status, and why it is not ready. */
export async function readiness (url: string): Promise<{ status: number, reasons: string[] }> {
  const response = await fetch(`${url}/readyz`)
  const { reasons = [] } = await response.json() as { reasons?: string[] }
  return { status: response.status, reasons }
}

/**
 * Opens a user's feed (GET /ws) as a client does: `since` resumes after a cursor; `options` go to
 * `ws` (e.g. `localAddress`). Listen for frames before the socket opens: the first may come at once.
 * The raw socket, for the bench's load clients; tests read feeds through a `FeedClient`.
 */
export function openFeedSocket (url: string, token: string, options: ClientOptions & { since?: string } = {}): WebSocket {
  const { since, ...socketOptions } = options
  const query = new URLSearchParams({ token, ...(since === undefined ? {} : { since }) })
  return new WebSocket(`${url.replace(/^http/, 'ws')}/ws?${query.toString()}`, { perMessageDeflate: false, ...socketOptions })
}

/** The gateway's frames (server/feed/frames.ts), their notifications read as the server's type. */
export type Frame = GatewayFrame<Notification>
export type NotificationFrame = GatewayNotificationFrame<Notification>

/** The gateway's error answer (docs/protocol.md). */
export interface ErrorBody { statusCode: number, error: string, message: string, code: string }

/** How an upgrade to /ws ended: a socket (101), or the HTTP answer that refused it. */
export type Upgrade = { opened: true, feed: FeedClient } | { opened: false, status: number, body: ErrorBody }

/** `ws`'s options, and the subprotocols to offer (the page offers its token as one). */
export type UpgradeOptions = ClientOptions & { protocols?: string[] }

export interface ConnectOptions {
  /** Resume after this cursor (`since`). */
  since?: string
  /** Called with each frame as it arrives, before any `next` or `until` sees it. */
  onFrame?: (frame: Frame) => void
}

/**
 * The tests' one WebSocket client of /ws, over a real socket (`connect`, `open`, `upgrade`) or
 * Fastify's in-memory one (`inject`). It listens from the first byte on: every frame is kept in
 * `frames`, in order, and read once each with `next()`, which waits for one to come; `until`
 * waits for a condition on the frames, checked as each one arrives.
 */
export class FeedClient {
  readonly socket: WebSocket
  /** Every frame received so far, in order. */
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  /** The first frame (`ready`); rejects if the socket closes before any. */
  readonly ready: Promise<Frame>
  /** How many of `frames` `next()` has returned. */
  #read = 0
  readonly #waiters = new Waiters()

  /** Listens on a socket that is being opened: nothing it receives is missed. */
  private constructor (socket: WebSocket, onFrame?: (frame: Frame) => void) {
    this.socket = socket
    let first!: (frame: Frame) => void
    const firstFrame = new Promise<Frame>((resolve) => { first = resolve })
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame
      this.frames.push(frame)
      onFrame?.(frame)
      first(frame)
      this.#waiters.wake()
    })
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })))
    this.ready = Promise.race([firstFrame, this.closed.then(({ code }): never => { throw new Error(`closed with ${code} before any frame`) })])
    this.ready.catch(() => {})
  }

  /** Opens `token`'s feed on the gateway at `url`; rejects if the upgrade is refused. Close it with `close()`. */
  static async connect (url: string, token: string, options: ConnectOptions = {}): Promise<FeedClient> {
    const { onFrame, ...socketOptions } = options
    return FeedClient.#opened(await FeedClient.#dial(openFeedSocket(url, token, socketOptions), onFrame))
  }

  /** Opens `path` (/ws and its query) on the gateway at `url`, closed at t's teardown; rejects if the upgrade is refused. */
  static async open (t: TestContext, url: string, path: string, options: UpgradeOptions = {}): Promise<FeedClient> {
    return FeedClient.#opened(await FeedClient.upgrade(t, url, path, options))
  }

  /** Opens `path` on the gateway at `url` (offering `protocols`): either a socket (101), or the HTTP answer that refused it. Closed at t's teardown. */
  static async upgrade (t: TestContext, url: string, path: string, options: UpgradeOptions = {}): Promise<Upgrade> {
    const { protocols = [], ...clientOptions } = options
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, protocols, { perMessageDeflate: false, ...clientOptions })
    t.teardown(() => socket.terminate())
    return await FeedClient.#dial(socket)
  }

  /** Opens `path` over `app.injectWS` (no listening server), closed at t's teardown. */
  static async inject (t: TestContext, app: FastifyInstance, path: string, headers: Record<string, string> = {}): Promise<FeedClient> {
    let client: FeedClient | undefined
    const socket = await app.injectWS(path, { headers }, { onInit: (ws) => { client = new FeedClient(ws) } })
    t.teardown(() => socket.terminate())
    return client!
  }

  /** Frames received and not yet read with `next()`. */
  get queued (): number {
    return this.frames.length - this.#read
  }

  /** The next frame not read yet, waiting up to `timeoutMs` for it to come. */
  async next (timeoutMs = FRAME_TIMEOUT_MS): Promise<Frame> {
    await this.#waiters.until(() => `a frame after the ${this.#read} read`, () => this.queued > 0, timeoutMs)
    return this.frames[this.#read++]!
  }

  /** Reads frames until one of `type` arrives, and returns it. */
  async nextOf<T extends Frame['type']> (type: T, timeoutMs = FRAME_TIMEOUT_MS): Promise<Extract<Frame, { type: T }>> {
    for (;;) {
      const frame = await this.next(timeoutMs)
      if (frame.type === type) return frame as Extract<Frame, { type: T }>
    }
  }

  /** Resolves once `done()` holds, checked now and as each frame arrives; rejects after `timeoutMs`. */
  async until (what: string, done: () => boolean, timeoutMs = FRAME_TIMEOUT_MS): Promise<void> {
    await this.#waiters.until(() => `${what} (${this.frames.length} frames)`, done, timeoutMs)
  }

  close (): void {
    this.socket.terminate()
  }

  static #opened (upgraded: Upgrade): FeedClient {
    if (!upgraded.opened) throw new Error(`/ws refused with ${upgraded.status}: ${JSON.stringify(upgraded.body)}`)
    return upgraded.feed
  }

  /** Resolves once `socket` is open, or with the HTTP answer that refused it; the client listens from the start. */
  static #dial (socket: WebSocket, onFrame?: (frame: Frame) => void): Promise<Upgrade> {
    const feed = new FeedClient(socket, onFrame)
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve({ opened: true, feed }))
      socket.once('unexpected-response', (request, response: IncomingMessage) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => {
          request.destroy()
          resolve({ opened: false, status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as ErrorBody })
        })
      })
      socket.once('error', reject)
    })
  }
}

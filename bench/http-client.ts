import { connect, type Socket } from 'node:net'

/** Called once per request: status 0 when no answer came (then `error` says why). */
export type AnswerCallback = (status: number, body: string, error?: string) => void

interface Pending { request: string, callback: AnswerCallback }

const HEADER_END = Buffer.from('\r\n\r\n')
const SWEEP_EVERY_MS = 100

/**
 * A minimal HTTP/1.1 keep-alive client: one request at a time per connection, connections
 * opened on demand up to a bound, requests queued when all are busy. The sequential phase
 * times follows of under a millisecond with it: Node's `http.request` (or fetch) spends about
 * 100 µs per request in the client, which would be counted as the gateway's; writing a
 * pre-formatted request and reading status, content-length and body costs a fraction of that.
 * Enough for the gateway's answers (always with content-length); not a general client.
 */
export class HttpPool {
  readonly #host: string
  readonly #port: number
  readonly #maxConnections: number
  readonly #timeoutMs: number
  readonly #idle: PoolConnection[] = []
  readonly #all = new Set<PoolConnection>()
  readonly #queue: Pending[] = []
  readonly #sweeper: NodeJS.Timeout
  #queueHead = 0

  constructor (options: { host: string, port: number, maxConnections: number, timeoutMs: number }) {
    this.#host = options.host
    this.#port = options.port
    this.#maxConnections = options.maxConnections
    this.#timeoutMs = options.timeoutMs
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_EVERY_MS).unref()
  }

  /** `request` is the whole request, head and body, as it goes on the wire. */
  send (request: string, callback: AnswerCallback): void {
    const pending = { request, callback }
    const connection = this.#idle.pop()
    if (connection !== undefined) {
      connection.start(pending)
      return
    }
    this.#queue.push(pending)
    if (this.#all.size < this.#maxConnections) this.#open()
  }

  /** Fails every queued and in-flight request with `why` and closes the connections. */
  abortAll (why: string): number {
    let aborted = 0
    for (let i = this.#queueHead; i < this.#queue.length; i++) {
      this.#queue[i]!.callback(0, '', why)
      aborted++
    }
    this.#queue.length = 0
    this.#queueHead = 0
    for (const connection of [...this.#all]) {
      if (connection.current !== undefined) aborted++
      connection.fail(why)
    }
    return aborted
  }

  destroy (): void {
    clearInterval(this.#sweeper)
    this.abortAll('client closed')
  }

  #open (): void {
    const connection = new PoolConnection(connect({ host: this.#host, port: this.#port, noDelay: true }), {
      ready: (ready) => this.#next(ready),
      gone: (gone) => {
        this.#all.delete(gone)
        const at = this.#idle.indexOf(gone)
        if (at >= 0) this.#idle.splice(at, 1)
        // Requests still queued need a connection of their own.
        if (this.#queue.length > this.#queueHead && this.#all.size < this.#maxConnections) this.#open()
      }
    })
    this.#all.add(connection)
  }

  #next (connection: PoolConnection): void {
    if (this.#queueHead < this.#queue.length) {
      const pending = this.#queue[this.#queueHead]!
      this.#queue[this.#queueHead++] = undefined as unknown as Pending
      if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#queueHead)
        this.#queueHead = 0
      }
      connection.start(pending)
      return
    }
    this.#idle.push(connection)
  }

  #sweep (): void {
    const cutoff = performance.now() - this.#timeoutMs
    for (const connection of [...this.#all]) {
      if (connection.current !== undefined && connection.startedAt < cutoff) connection.fail('timeout')
    }
  }
}

class PoolConnection {
  readonly #socket: Socket
  readonly #events: { ready: (connection: PoolConnection) => void, gone: (connection: PoolConnection) => void }
  current: Pending | undefined
  startedAt = 0
  #connected = false
  #buffer: Buffer | undefined
  #closed = false

  constructor (socket: Socket, events: { ready: (connection: PoolConnection) => void, gone: (connection: PoolConnection) => void }) {
    this.#socket = socket
    this.#events = events
    socket.on('connect', () => {
      this.#connected = true
      if (this.current === undefined) events.ready(this)
      else socket.write(this.current.request)
    })
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error.code ?? error.message))
    socket.on('close', () => this.fail('connection closed'))
  }

  start (pending: Pending): void {
    this.current = pending
    this.startedAt = performance.now()
    if (this.#connected) this.#socket.write(pending.request)
  }

  /** Ends this connection; its request, if any, fails with `why`. */
  fail (why: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#socket.destroy()
    const pending = this.current
    this.current = undefined
    this.#events.gone(this)
    pending?.callback(0, '', why)
  }

  #onData (chunk: Buffer): void {
    const buffer = this.#buffer === undefined ? chunk : Buffer.concat([this.#buffer, chunk])
    const headEnd = buffer.indexOf(HEADER_END)
    if (headEnd < 0) {
      this.#buffer = buffer
      return
    }
    const head = buffer.toString('latin1', 0, headEnd)
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1]
    if (length === undefined) {
      this.fail('answer without content-length')
      return
    }
    const end = headEnd + HEADER_END.length + Number(length)
    if (buffer.length < end) {
      this.#buffer = buffer
      return
    }
    this.#buffer = undefined
    const status = Number(head.slice(9, 12))
    const body = buffer.toString('utf8', headEnd + HEADER_END.length, end)
    const pending = this.current
    this.current = undefined
    const closing = /\r\nconnection: *close/i.test(head)
    pending?.callback(status, body)
    if (closing || buffer.length > end) {
      this.fail('connection closed by the server')
      return
    }
    this.#events.ready(this)
  }
}

const ID_PREFIX = '{"notification":{"id":"'

/** The 202 body is `{ notification: { id, … } }`; the id is read without parsing when it comes first. */
export function notificationId (body: string): string | undefined {
  if (body.startsWith(ID_PREFIX) && body.charCodeAt(ID_PREFIX.length + 36) === 34) {
    return body.slice(ID_PREFIX.length, ID_PREFIX.length + 36)
  }
  try {
    const id = (JSON.parse(body) as { notification?: { id?: unknown } }).notification?.id
    return typeof id === 'string' ? id : undefined
  } catch {
    return undefined
  }
}

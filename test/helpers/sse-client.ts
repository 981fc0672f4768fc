import { get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import type { CloseFrame } from '../../server/feed/frames.js'
import type { Frame } from './clients.js'
import type { TestContext } from './gateway.js'
import { Waiters } from './waiters.js'

/** One event of a text/event-stream, parsed as the format says (`EventSource` does the same). */
export interface StreamEvent {
  event: string
  /** The `id:` field of this event, if it had one. */
  id: string | undefined
  data: string
  /** `data` read as the gateway's frame. */
  frame: Frame | CloseFrame
}

export type EventStreamAnswer =
  | { opened: true, stream: EventStreamClient }
  | { opened: false, status: number, headers: IncomingHttpHeaders, body: { statusCode: number, code: string, message: string } }

const FIELD = /^([^:]*)(?::\s?(.*))?$/

/**
 * GET /sse with a plain HTTP client (one connection, no pooling): either the stream, whose events are
 * queued as they arrive and read in order with `next()`, or the JSON answer that refused it.
 */
export class EventStreamClient {
  readonly response: IncomingMessage
  readonly events: StreamEvent[] = []
  /** How many comment lines (heartbeats) came. */
  comments = 0
  /** Every byte received, as text. */
  raw = ''
  readonly ended: Promise<void>
  #read = 0
  #pending = ''
  #event: { event: string, id: string | undefined, data: string[] } = { event: 'message', id: undefined, data: [] }
  readonly #waiters = new Waiters()
  readonly #destroy: () => void

  private constructor (response: IncomingMessage, destroy: () => void) {
    this.response = response
    this.#destroy = destroy
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => this.#take(chunk))
    this.ended = new Promise((resolve) => response.once('close', () => {
      this.#waiters.wake()
      resolve()
    }))
  }

  static open (t: TestContext, url: string, path: string, headers: Record<string, string> = {}): Promise<EventStreamAnswer> {
    return new Promise((resolve, reject) => {
      const request = get(`${url}${path}`, { headers, agent: false }, (response) => {
        if (response.statusCode === 200) {
          resolve({ opened: true, stream: new EventStreamClient(response, () => request.destroy()) })
          return
        }
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => resolve({ opened: false, status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(Buffer.concat(chunks).toString()) }))
      })
      request.once('error', reject)
      t.teardown(() => request.destroy())
    })
  }

  /** Like `open`, failing unless the stream opened. */
  static async connect (t: TestContext, url: string, path: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
    const answer = await EventStreamClient.open(t, url, path, headers)
    if (!answer.opened) throw new Error(`${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`)
    return answer.stream
  }

  /** The next event not read yet, waiting (bounded) for it to come. */
  async next (timeoutMs = 10_000): Promise<StreamEvent> {
    await this.#waiters.until(() => `no event after ${this.#read} (stream ${this.response.closed ? 'ended' : 'open'})`,
      () => this.events.length > this.#read, timeoutMs)
    return this.events[this.#read++]!
  }

  /** Reads events until one of `type` arrives, and returns it. */
  async nextOf (type: string, timeoutMs = 10_000): Promise<StreamEvent> {
    for (;;) {
      const event = await this.next(timeoutMs)
      if (event.event === type) return event
    }
  }

  /** Resolves once `done()` holds, checked after each event, comment and the end. */
  async until (what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
    await this.#waiters.until(() => what, done, timeoutMs)
  }

  /** Events received and not read with `next` yet. */
  get queued (): number {
    return this.events.length - this.#read
  }

  /** The id `EventSource` would send back as `Last-Event-ID`: the last one any event carried. */
  get lastEventId (): string | undefined {
    return this.events.findLast((event) => event.id !== undefined)?.id
  }

  close (): void {
    this.#destroy()
  }

  #take (chunk: string): void {
    this.raw += chunk
    const lines = (this.#pending + chunk).split(/\r\n|\r|\n/)
    this.#pending = lines.pop() ?? ''
    for (const line of lines) this.#line(line)
    this.#waiters.wake()
  }

  #line (line: string): void {
    if (line === '') {
      const { event, id, data } = this.#event
      if (data.length > 0) {
        const text = data.join('\n')
        this.events.push({ event, id, data: text, frame: JSON.parse(text) as Frame | CloseFrame })
      }
      this.#event = { event: 'message', id: undefined, data: [] }
      return
    }
    if (line.startsWith(':')) {
      this.comments++
      return
    }
    const [, name, value = ''] = FIELD.exec(line) ?? []
    if (name === 'event') this.#event.event = value
    else if (name === 'id') this.#event.id = value
    else if (name === 'data') this.#event.data.push(value)
  }
}

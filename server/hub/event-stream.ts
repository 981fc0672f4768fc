import type { ServerResponse } from 'node:http'
import { closeFrame, frameHead } from '../feed/frames.js'
import type { FeedConnection } from './socket.js'

const OPEN = 1
const CLOSING = 2
const CLOSED = 3

/** A comment line: event streams ignore it; it keeps proxies from taking the stream for idle, and probes the peer. */
const HEARTBEAT = ': heartbeat\n\n'
/** Any line break of the text/event-stream format, which ends a field. */
const LINE_BREAK = /\r\n|\r|\n/

/**
 * A text/event-stream response (GET /sse) seen as the hub's feed connection, so the relay,
 * catch-ups and fan-out treat it like a WebSocket: each frame becomes one event, `event:` its type,
 * `data:` the frame's JSON, and `id:` the cursor to resume after (what `EventSource` sends back as
 * `Last-Event-ID` when it reconnects). A close is a last `close` event with the code a WebSocket
 * would have been closed with, then the end of the response.
 *
 * Liveness, as a WebSocket's ping and pong: a heartbeat counts as answered once it left the
 * process. A peer that stopped reading leaves it queued, and is dropped at the next heartbeat.
 */
export class EventStream implements FeedConnection {
  readonly #response: ServerResponse
  /** The cursor the client resumes from (`Last-Event-ID` or `since`), the `id` of `ready`. */
  readonly #resumeFrom: string | undefined
  #readyState = OPEN
  /** Told when a heartbeat left the process: the socket marks itself alive. */
  onPong: (() => void) | undefined

  constructor (response: ServerResponse, resumeFrom: string | undefined) {
    this.#response = response
    this.#resumeFrom = resumeFrom
    response.once('close', () => { this.#readyState = CLOSED })
  }

  get readyState (): number {
    return this.#readyState
  }

  /** The response's bytes not yet written out, those its TCP socket holds included. */
  get bufferedAmount (): number {
    return this.#response.writableLength
  }

  send (data: string, written?: (error?: Error) => void): void {
    this.#response.write(this.#event(data), written === undefined ? undefined : (error) => written(error ?? undefined))
  }

  ping (): void {
    this.#response.write(HEARTBEAT, (error) => {
      if (error == null) this.onPong?.()
    })
  }

  close (code: number, reason: string): void {
    if (this.#readyState !== OPEN) return
    this.#readyState = CLOSING
    this.#response.end(this.#event(closeFrame(code, reason)))
  }

  terminate (): void {
    this.#readyState = CLOSED
    this.#response.destroy()
  }

  /**
   * The event of a frame. A frame's JSON has no line break, unless a notification came from a
   * producer that wrote it with some (it is sent as stored): each line is a `data:` field of its
   * own, and the client joins them with `\n`, which JSON reads as the same whitespace.
   */
  #event (frame: string): string {
    const { type, cursor } = frameHead(frame)
    // `ready` names the newest cursor, which a client resuming from an older one has not caught up to yet.
    const id = type === 'ready' ? this.#resumeFrom ?? cursor : type === 'notification' || type === 'synced' || type === 'state' ? cursor : undefined
    const data = LINE_BREAK.test(frame) ? frame.split(LINE_BREAK).join('\ndata: ') : frame
    return `event: ${type}\n${id === undefined ? '' : `id: ${id}\n`}data: ${data}\n\n`
  }
}

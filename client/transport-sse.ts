import { apiError } from './api.js'
import type { CloseFrame, ServerFrame } from './types.js'
import type { Dial, OpenTransport, TransportEnd } from './transport.js'
import { feedUrl, parseFrame } from './transport.js'

/** Any line break of the text/event-stream format. */
const LINE_BREAK = /\r\n|\r|\n/

/**
 * Reads a text/event-stream in chunks: each event's `data:` lines, joined with `\n`, to `onData`.
 * Comments (the gateway's heartbeats), `event:` and `id:` are skipped: every frame names its own
 * type and cursor.
 */
export class EventStreamReader {
  readonly #onData: (data: string) => void
  #pending = ''
  #data: string[] = []

  constructor (onData: (data: string) => void) {
    this.#onData = onData
  }

  push (chunk: string): void {
    let text = this.#pending + chunk
    // A `\r` at the end may be the first half of a `\r\n`: its line waits for the next chunk.
    const tail = text.endsWith('\r') ? '\r' : ''
    if (tail !== '') text = text.slice(0, -1)
    const lines = text.split(LINE_BREAK)
    this.#pending = (lines.pop() ?? '') + tail
    for (const line of lines) this.#line(line)
  }

  #line (line: string): void {
    if (line === '') {
      if (this.#data.length > 0) this.#onData(this.#data.join('\n'))
      this.#data = []
      return
    }
    if (!line.startsWith('data:')) return
    this.#data.push(line.slice(line.startsWith('data: ') ? 6 : 5))
  }
}

/**
 * Connection attempts over `/sse` of the gateway at `baseUrl`, read with fetch (browsers and Node
 * alike, which has no EventSource): the token goes in the Authorization header, never in the URL,
 * and needs no one-time ticket, so a reconnect — always this client's own, with the `since` of
 * that moment — is one request, as a WebSocket's is. The stream's `close` event ends the attempt
 * with its code; a refusal ends it with its HTTP status (401 as 4001: the token must be renewed).
 */
export function eventStreamTransport (baseUrl: string, fetchImpl: typeof fetch = (input, init) => fetch(input, init)): OpenTransport {
  return (dial: Dial, { onFrame, onEnd }) => {
    const abort = new AbortController()
    let closed = false
    const end = (result: TransportEnd): void => {
      if (closed) return
      closed = true
      onEnd(result)
    }
    void read(fetchImpl, baseUrl, dial, abort.signal, (frame) => { if (!closed) onFrame(frame) }).then(end, () => {
      end({ code: 1006, reason: '', opened: false })
    })
    return {
      close () {
        closed = true
        abort.abort()
      }
    }
  }
}

async function read (fetchImpl: typeof fetch, baseUrl: string, dial: Dial, signal: AbortSignal, onFrame: (frame: ServerFrame) => void): Promise<TransportEnd> {
  const response = await fetchImpl(feedUrl(baseUrl, '/sse', dial.since), {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${dial.token}` },
    signal
  })
  if (!response.ok || response.body === null) {
    const error = apiError(response, await response.json().catch(() => null))
    const code = response.status === 401 ? 4001 : response.status === 429 ? 4029 : 1006
    return { code, reason: error.message, opened: false, status: response.status }
  }
  const last: { close: CloseFrame | null } = { close: null }
  const reader = new EventStreamReader((data) => {
    const frame = parseFrame(data) as ServerFrame | CloseFrame | null
    if (frame === null) return
    if (frame.type === 'close') last.close = frame
    else onFrame(frame)
  })
  const decoder = new TextDecoder()
  const body = response.body.getReader()
  try {
    for (;;) {
      const { done, value } = await body.read()
      if (done) break
      reader.push(decoder.decode(value, { stream: true }))
    }
  } catch {
    // The connection broke: the end below says so (no `close` event came).
  }
  const { close } = last
  return close === null ? { code: 1006, reason: '', opened: true } : { code: close.code, reason: close.reason, opened: true }
}

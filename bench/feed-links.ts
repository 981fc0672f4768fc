import { request as httpRequest } from 'node:http'
import { EventStreamReader } from '../client/transport-sse.js'
import { openFeedSocket } from '../test/helpers/clients.js'

/** How a client process reaches a user's feed: `/ws` (a WebSocket) or `/sse` (an event stream). */
export type Transport = 'ws' | 'sse'

/** Where a link goes and as whom. */
export interface Dial {
  url: string
  token: string
  /** Source address of the connection (any of 127.0.0.0/8). */
  localAddress: string | undefined
  handshakeTimeoutMs: number
}

/**
 * What a link tells its owner: each frame's JSON as it arrives (the first is `ready`), an error,
 * and its end, once, with the close code (a WebSocket's, a `close` event's, or `ended` for a
 * stream that ended without one).
 */
export interface LinkEvents {
  frame: (data: Buffer) => void
  error: (error: Error) => void
  closed: (code: string) => void
}

/** An open (or opening) link; `terminate` cuts it at once, and `closed` follows. */
export interface Link { terminate: () => void }

export function dial (transport: Transport, target: Dial, events: LinkEvents): Link {
  return transport === 'ws' ? dialWebSocket(target, events) : dialEventStream(target, events)
}

function dialWebSocket ({ url, token, localAddress, handshakeTimeoutMs }: Dial, events: LinkEvents): Link {
  const socket = openFeedSocket(url, token, {
    handshakeTimeout: handshakeTimeoutMs,
    ...(localAddress === undefined ? {} : { localAddress })
  })
  socket.on('message', (data: Buffer) => events.frame(data))
  socket.on('error', events.error)
  socket.on('close', (code) => events.closed(String(code)))
  return { terminate: () => socket.terminate() }
}

const CLOSE_PREFIX = '{"type":"close"'

/**
 * GET /sse with the token in the Authorization header (as the client library reads it), one
 * connection per stream (no agent). The events' data go through the client library's reader; a
 * `close` event's code is kept for the end. A refusal is an error with its status and body.
 */
function dialEventStream ({ url, token, localAddress, handshakeTimeoutMs }: Dial, events: LinkEvents): Link {
  let closeCode: string | undefined
  let ended = false
  const end = (code: string): void => {
    if (ended) return
    ended = true
    events.closed(code)
  }
  const request = httpRequest(`${url}/sse`, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
    agent: false,
    timeout: handshakeTimeoutMs,
    ...(localAddress === undefined ? {} : { localAddress })
  }, (response) => {
    // The handshake is over: a quiet stream is not a timeout (heartbeats and pings probe it).
    request.setTimeout(0)
    if (response.statusCode !== 200) {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => events.error(new Error(`answered ${response.statusCode ?? '?'}: ${Buffer.concat(chunks).toString().slice(0, 200)}`)))
      return
    }
    const reader = new EventStreamReader((data) => {
      if (data.startsWith(CLOSE_PREFIX)) {
        closeCode = String((JSON.parse(data) as { code?: unknown }).code)
        return
      }
      events.frame(Buffer.from(data))
    })
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => reader.push(chunk))
    // A stream cut mid-body (the gateway dropped it, or `terminate`): its end is `closed`.
    response.on('error', events.error)
    response.once('close', () => end(closeCode ?? 'ended'))
  })
  request.once('timeout', () => request.destroy(new Error(`no answer within ${handshakeTimeoutMs} ms`)))
  request.on('error', events.error)
  request.once('close', () => end(closeCode ?? 'ended'))
  request.end()
  return { terminate: () => request.destroy() }
}

import type { Dial, OpenTransport } from './transport.js'
import { feedUrl, parseFrame } from './transport.js'

/** The part of a WebSocket this client uses: the browser's, Node 22's global one, or the `ws` package's. */
interface WebSocketLike {
  onopen: (() => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number, reason: string }) => void) | null
  onerror: (() => void) | null
  close: (code?: number) => void
}

/** A WebSocket class: `globalThis.WebSocket`, or `ws`'s default export on Node 20. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => object

/**
 * The token travels as a subprotocol, the one header a browser can set on a WebSocket: never in
 * the URL (proxies log URLs), and without a request before each attempt (a ticket's POST would
 * wait on the same dead kept-alive connection when the path to the gateway went silent).
 */
export function subprotocols (token: string): string[] {
  return ['kafka-notify', `bearer.${token}`]
}

/** Connection attempts over `/ws` of the gateway at `baseUrl`. */
export function webSocketTransport (baseUrl: string, WebSocketClass: WebSocketConstructor): OpenTransport {
  return (dial: Dial, { onFrame, onEnd }) => {
    const socket = new WebSocketClass(feedUrl(baseUrl, '/ws', dial.since), subprotocols(dial.token)) as WebSocketLike
    let opened = false
    let closed = false
    socket.onopen = () => { opened = true }
    socket.onmessage = (event) => {
      if (closed) return
      const frame = parseFrame(event.data)
      if (frame !== null) onFrame(frame)
    }
    // `ws` throws an error event nobody listens to; the close that follows says all there is.
    socket.onerror = () => {}
    socket.onclose = (event) => {
      if (closed) return
      closed = true
      onEnd({ code: event.code, reason: event.reason, opened })
    }
    return {
      close () {
        closed = true
        socket.close(1000)
      }
    }
  }
}

import type { Position } from './feed-sync.js'
import type { ServerFrame } from './types.js'

export type SocketState = 'disconnected' | 'connecting' | 'connected'

export interface SocketStatus {
  state: SocketState
  /** True while connecting again after a lost connection or a failed attempt. */
  retrying: boolean
  /** Why the connection stopped for good (close 4500–4999, or an expired token that cannot be renewed). */
  error: string | null
}

/** What one socket is opened with. */
export interface Dial {
  token: string
  /** The resume point: catch-up from here (null: live only). */
  since: Position | null
}

export interface LiveSocketOptions {
  /** The socket endpoint without a query, e.g. `wss://example.com/ws`. */
  endpoint: string
  /** Read for every attempt, so each one uses the current token and resume point. */
  dial: () => Dial
  /** Every frame, with what its socket was opened with (its `since` is what a catch-up resumes from). */
  onFrame: (frame: ServerFrame, dial: Dial) => void
  onStatus: (status: SocketStatus) => void
  /** Resolves true with a fresh token in place, false if this session cannot renew; rejects on a transient failure. */
  renewToken: () => Promise<boolean>
}

/** Full-jitter exponential backoff: random(0, min(cap, base * 2^attempt)). */
export function backoff (attempt: number, base = 500, cap = 15_000): number {
  return Math.random() * Math.min(cap, base * 2 ** attempt)
}

export function socketUrl (endpoint: string, since: Position | null): string {
  return since === null ? endpoint : `${endpoint}?${new URLSearchParams({ since: since.cursor })}`
}

/**
 * The token travels as a subprotocol, the one header a browser can set on a WebSocket: never in
 * the URL (proxies log URLs), and without a request before each attempt (a ticket's POST would
 * wait on the same dead kept-alive connection when the path to the gateway went silent).
 */
export function subprotocols (token: string): string[] {
  return ['kafka-notify', `bearer.${token}`]
}

function parseFrame (data: unknown): ServerFrame | null {
  if (typeof data !== 'string') return null
  try {
    const frame: unknown = JSON.parse(data)
    return typeof frame === 'object' && frame !== null && 'type' in frame ? frame as ServerFrame : null
  } catch {
    return null
  }
}

/**
 * The page's live socket to /ws, one WebSocket at a time, as a state machine after centrifuge-js:
 * disconnected → connecting → connected, back to connecting (with backoff) when the socket drops,
 * and disconnected only on stop() or when the server says not to come back.
 */
export class LiveSocket {
  readonly #options: LiveSocketOptions
  #state: SocketState = 'disconnected'
  #socket: WebSocket | null = null
  /** The previous socket during a token switch: it keeps delivering until the new one is ready. */
  #retiring: WebSocket | null = null
  #attempt = 0
  #everReady = false
  #error: string | null = null
  #timer: ReturnType<typeof setTimeout> | undefined
  #renewedSinceReady = false
  /** How often the gateway sends `ping` frames (its `ready` says); null from a gateway that sends none. */
  #pingMs: number | null = null
  /** Fires when no frame came for two ping intervals. */
  #silence: ReturnType<typeof setTimeout> | undefined

  constructor (options: LiveSocketOptions) {
    this.#options = options
  }

  get state (): SocketState {
    return this.#state
  }

  start (): void {
    if (this.#state !== 'disconnected') return
    this.#attempt = 0
    this.#everReady = false
    this.#error = null
    this.#open()
  }

  stop (): void {
    this.#error = null
    this.#halt()
  }

  #halt (): void {
    this.#drop()
    this.#set('disconnected')
  }

  /** Closes the current socket (and one still retiring), with every timer that would act on it. */
  #drop (): void {
    clearTimeout(this.#timer)
    clearTimeout(this.#silence)
    this.#retire()
    const socket = this.#socket
    this.#socket = null
    socket?.close(1000)
  }

  /** Switches to a fresh token without a visible gap: the old socket stays until the new one is ready. */
  restart (): void {
    if (this.#state !== 'connected' || this.#socket === null) return
    this.#retire()
    this.#retiring = this.#socket
    this.#socket = null
    this.#open(false)
  }

  /**
   * Drops the socket and connects again (with the `since` of that moment): the feed saw a hole, or
   * the connection went silent. The wait is jittered, so tabs that all saw the same hole do not
   * come back at once.
   */
  resync (): void {
    if (this.#state !== 'connected') return
    this.#drop()
    this.#set('connecting')
    this.#timer = setTimeout(() => this.#open(), backoff(this.#attempt++))
  }

  /** Skips the rest of a backoff wait, e.g. when the browser comes back online. */
  retryNow (): void {
    if (this.#state !== 'connecting' || this.#socket !== null) return
    this.#open()
  }

  #open (announce = true): void {
    clearTimeout(this.#timer)
    if (announce) this.#set('connecting')
    const dial = this.#options.dial()
    let opened = false
    const socket = new WebSocket(socketUrl(this.#options.endpoint, dial.since), subprotocols(dial.token))
    this.#socket = socket
    socket.onopen = () => { opened = true }
    socket.onmessage = (event) => {
      if (socket !== this.#socket && socket !== this.#retiring) return
      const frame = parseFrame(event.data)
      if (frame === null) return
      if (frame.type === 'ready' && socket === this.#socket) {
        this.#attempt = 0
        this.#everReady = true
        this.#renewedSinceReady = false
        this.#pingMs = frame.pingMs ?? null
        this.#retire()
        this.#set('connected')
      }
      this.#heard()
      this.#options.onFrame(frame, dial)
    }
    socket.onclose = (event) => {
      if (socket === this.#retiring) this.#retiring = null
      if (socket !== this.#socket) return
      clearTimeout(this.#silence)
      this.#socket = null
      this.#lost(event.code, event.reason, opened)
    }
  }

  /** The attempt's socket closed, or never opened. */
  #lost (code: number, reason: string, opened: boolean): void {
    // A token switch that failed keeps the old socket; its own expiry (4001) is handled as usual.
    if (this.#retiring?.readyState === WebSocket.OPEN) {
      this.#socket = this.#retiring
      this.#retiring = null
      return
    }
    this.#retire()
    void this.#closed(code, reason, opened)
  }

  async #closed (code: number, reason: string, opened: boolean): Promise<void> {
    if (this.#state === 'disconnected') return
    if (code >= 4500 && code <= 4999) return this.#fail(`Closed by the server${reason === '' ? '' : `: ${reason}`} (${code})`)
    this.#set('connecting')

    // The browser reports an upgrade refused with HTTP 401 (bad or expired token) as 1006 before `open`.
    if (code === 4001 || (code === 1006 && !opened)) {
      let renewed: boolean | null = null
      try {
        renewed = await this.#options.renewToken()
      } catch {
        // Transient (e.g. the server is down): back off below and try again.
      }
      if (this.#state !== 'connecting' || this.#socket !== null) return
      if (renewed === false && code === 4001) return this.#fail('Your token expired, sign in again')
      // Reconnect at once only the first time, so a server that keeps refusing is met with backoff.
      if (renewed === true && !this.#renewedSinceReady) {
        this.#renewedSinceReady = true
        return this.#open()
      }
    }

    const tooMany = code === 4029
    const delay = tooMany ? backoff(this.#attempt, 5_000, 60_000) : backoff(this.#attempt)
    this.#attempt++
    this.#set('connecting')
    // Offline: wait for the browser's `online` event (retryNow) instead of burning attempts.
    if (navigator.onLine) this.#timer = setTimeout(() => this.#open(), delay)
  }

  /**
   * A frame came: the connection is alive. When none comes for two ping intervals it is dead, even
   * if the browser cannot tell (a NAT or a proxy forgot it: no close ever arrives): resume anew.
   */
  #heard (): void {
    clearTimeout(this.#silence)
    if (this.#pingMs !== null) this.#silence = setTimeout(() => this.resync(), 2 * this.#pingMs)
  }

  #fail (error: string): void {
    this.#error = error
    this.#halt()
  }

  #retire (): void {
    const socket = this.#retiring
    this.#retiring = null
    socket?.close(1000)
  }

  #set (state: SocketState): void {
    this.#state = state
    this.#options.onStatus({
      state,
      retrying: state === 'connecting' && (this.#everReady || this.#attempt > 0),
      error: state === 'disconnected' ? this.#error : null
    })
  }
}

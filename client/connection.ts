import { backoff } from './backoff.js'
import type { Dial, OpenTransport, Transport, TransportEnd, TransportKind } from './transport.js'
import type { ServerFrame } from './types.js'

export type ConnectionState = 'disconnected' | 'connecting' | 'connected'

export interface ConnectionStatus {
  state: ConnectionState
  /** True while connecting again after a lost connection or a failed attempt. */
  retrying: boolean
  /** Why the connection stopped for good (close 4500–4999, a refusal, or an expired token that cannot be renewed). */
  error: string | null
  /** The transport of the current (or next) attempt. */
  transport: TransportKind
}

export interface ConnectionOptions {
  /** `websocket` is tried first; `sse` is the fallback. */
  transports: Partial<Record<TransportKind, OpenTransport>>
  /** Read for every attempt, so each one uses the current token and resume point. */
  dial: () => Dial
  /** Every frame, with what its attempt was opened with (its `since` is what a catch-up resumes from). */
  onFrame: (frame: ServerFrame, dial: Dial) => void
  onStatus: (status: ConnectionStatus) => void
  /** Resolves true with a fresh token in place, false if it cannot be renewed; rejects on a transient failure. */
  renewToken: () => Promise<boolean>
  /**
   * WebSocket attempts in a row that end before `ready` (refused, cut by a proxy, never answered)
   * after which the connection tries SSE, and keeps to it until the next `start()` once it works.
   * Default 2: one failure may be a token to renew or a gateway restarting.
   */
  fallbackAfter?: number
}

/** One connection attempt: its transport, until it ends. */
interface Attempt {
  transport: Transport | null
}

/** Browsers say when they are offline; Node has no such flag, and is taken as online. */
function offline (): boolean {
  return (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false
}

/**
 * The live connection to the feed, one attempt at a time, as a state machine after centrifuge-js:
 * disconnected → connecting → connected, back to connecting (with backoff) when the connection
 * drops, and disconnected only on stop() or when the server says not to come back. Over
 * WebSocket, or SSE when WebSockets do not get through.
 */
export class Connection {
  readonly #options: ConnectionOptions
  readonly #fallbackAfter: number
  #state: ConnectionState = 'disconnected'
  #kind: TransportKind
  #current: Attempt | null = null
  /** The previous attempt during a token switch: it keeps delivering until the new one is ready. */
  #retiring: Attempt | null = null
  #attempt = 0
  /** WebSocket attempts in a row that ended before `ready`. */
  #misses = 0
  /** An SSE attempt reached `ready` since start(): WebSockets are what fails here, not the gateway. */
  #sseWorked = false
  #everReady = false
  #error: string | null = null
  #timer: ReturnType<typeof setTimeout> | undefined
  #renewedSinceReady = false
  /** How often the gateway sends `ping` frames (its `ready` says); null from a gateway that sends none. */
  #pingMs: number | null = null
  /** Fires when no frame came for two ping intervals. */
  #silence: ReturnType<typeof setTimeout> | undefined

  constructor (options: ConnectionOptions) {
    if (options.transports.websocket === undefined && options.transports.sse === undefined) {
      throw new TypeError('A connection needs a WebSocket or an SSE transport')
    }
    this.#options = options
    this.#fallbackAfter = options.fallbackAfter ?? 2
    this.#kind = this.#firstKind()
  }

  get state (): ConnectionState {
    return this.#state
  }

  get transport (): TransportKind {
    return this.#kind
  }

  start (): void {
    if (this.#state !== 'disconnected') return
    this.#attempt = 0
    this.#misses = 0
    this.#sseWorked = false
    this.#kind = this.#firstKind()
    this.#everReady = false
    this.#error = null
    this.#open()
  }

  stop (): void {
    this.#error = null
    this.#halt()
  }

  /** Switches to a fresh token without a visible gap: the old connection stays until the new one is ready. */
  restart (): void {
    if (this.#state !== 'connected' || this.#current === null) return
    this.#retire()
    this.#retiring = this.#current
    this.#current = null
    this.#open(false)
  }

  /**
   * Drops the connection and connects again (with the `since` of that moment): the feed saw a hole,
   * or the connection went silent. The wait is jittered, so clients that all saw the same hole do
   * not come back at once.
   */
  resync (): void {
    if (this.#state !== 'connected') return
    this.#drop()
    this.#set('connecting')
    this.#timer = setTimeout(() => this.#open(), backoff(this.#attempt++))
  }

  /** Skips the rest of a backoff wait, e.g. when the browser comes back online. */
  retryNow (): void {
    if (this.#state !== 'connecting' || this.#current !== null) return
    this.#open()
  }

  #firstKind (): TransportKind {
    return this.#options.transports.websocket === undefined ? 'sse' : 'websocket'
  }

  #halt (): void {
    this.#drop()
    this.#set('disconnected')
  }

  /** Closes the current attempt (and one still retiring), with every timer that would act on it. */
  #drop (): void {
    clearTimeout(this.#timer)
    clearTimeout(this.#silence)
    this.#retire()
    const current = this.#current
    this.#current = null
    current?.transport?.close()
  }

  #open (announce = true): void {
    clearTimeout(this.#timer)
    if (announce) this.#set('connecting')
    const dial = this.#options.dial()
    const kind = this.#kind
    const attempt: Attempt = { transport: null }
    let ready = false
    this.#current = attempt
    attempt.transport = this.#options.transports[kind]!(dial, {
      onFrame: (frame) => {
        if (attempt !== this.#current && attempt !== this.#retiring) return
        if (frame.type === 'ready' && attempt === this.#current) {
          ready = true
          this.#attempt = 0
          this.#misses = 0
          if (kind === 'sse') this.#sseWorked = true
          this.#everReady = true
          this.#renewedSinceReady = false
          this.#pingMs = frame.pingMs ?? null
          this.#retire()
          this.#set('connected')
        }
        this.#heard()
        this.#options.onFrame(frame, dial)
      },
      onEnd: (end) => {
        if (attempt === this.#retiring) this.#retiring = null
        if (attempt !== this.#current) return
        clearTimeout(this.#silence)
        this.#current = null
        if (!ready) this.#missed(kind)
        this.#lost(end, kind)
      }
    })
  }

  /**
   * An attempt ended before `ready`: after enough of them over WebSocket, SSE takes over, for good
   * once it reached `ready`. An SSE attempt that fails as well before any did says the gateway is
   * unreachable, not WebSockets: the next attempts try WebSocket again.
   */
  #missed (kind: TransportKind): void {
    const { websocket, sse } = this.#options.transports
    if (websocket === undefined || sse === undefined) return
    if (kind === 'websocket' && ++this.#misses >= this.#fallbackAfter) this.#kind = 'sse'
    if (kind === 'sse' && !this.#sseWorked) {
      this.#kind = 'websocket'
      this.#misses = 0
    }
  }

  /** The attempt's connection ended, or never opened. */
  #lost (end: TransportEnd, kind: TransportKind): void {
    // A token switch that failed keeps the old connection; its own expiry (4001) is handled as usual.
    if (this.#retiring !== null) {
      this.#current = this.#retiring
      this.#retiring = null
      return
    }
    void this.#closed(end, kind)
  }

  async #closed ({ code, reason, opened, status }: TransportEnd, kind: TransportKind): Promise<void> {
    if (this.#state === 'disconnected') return
    if (code >= 4500 && code <= 4999) return this.#fail(`Closed by the server${reason === '' ? '' : `: ${reason}`} (${code})`)
    if (status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 429) {
      return this.#fail(`Refused by the server${reason === '' ? '' : `: ${reason}`} (${status})`)
    }
    this.#set('connecting')

    // A browser reports a WebSocket upgrade refused with HTTP 401 (bad or expired token) as 1006 before `open`.
    if (code === 4001 || (code === 1006 && !opened && kind === 'websocket')) {
      let renewed: boolean | null = null
      try {
        renewed = await this.#options.renewToken()
      } catch {
        // Transient (e.g. the server is down): back off below and try again.
      }
      if (this.#state !== 'connecting' || this.#current !== null) return
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
    if (!offline()) this.#timer = setTimeout(() => this.#open(), delay)
  }

  /**
   * A frame came: the connection is alive. When none comes for two ping intervals it is dead, even
   * if the runtime cannot tell (a NAT or a proxy forgot it: no close ever arrives): resume anew.
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
    const retiring = this.#retiring
    this.#retiring = null
    retiring?.transport?.close()
  }

  #set (state: ConnectionState): void {
    this.#state = state
    this.#options.onStatus({
      state,
      retrying: state === 'connecting' && (this.#everReady || this.#attempt > 0),
      error: state === 'disconnected' ? this.#error : null,
      transport: this.#kind
    })
  }
}

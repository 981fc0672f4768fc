import { ApiError, GatewayApi, type StateRoute, staleCursor } from './api.js'
import { Connection, type ConnectionStatus } from './connection.js'
import { FeedSync, type Position } from './feed-sync.js'
import type { Dial, OpenTransport, TransportKind } from './transport.js'
import { eventStreamTransport } from './transport-sse.js'
import { type WebSocketConstructor, webSocketTransport } from './transport-ws.js'
import type { FeedCounts, FeedNotification, GroupedItem, GroupSummary, HistoryItem, HistoryPage, Muted, Selection, ServerFrame, StateChange, User } from './types.js'
import { type CountStamp, UnreadOrder } from './unread-order.js'

export interface NotifyClientOptions {
  /** The gateway's origin, e.g. `https://notify.example.com` (a page it serves passes `location.origin`). */
  baseUrl: string
  /** The user's current token, read for every connection attempt and API call. */
  token: () => string
  /**
   * Called when the gateway refuses the token (401, close 4001): resolve true once `token()` gives
   * a fresh one, false if none can be had; reject on a transient failure. Default: false.
   */
  renewToken?: () => Promise<boolean>
  /** Where to resume from, e.g. the last `position` event stored by an earlier run. */
  since?: Position | null
  /** The WebSocket class; default `globalThis.WebSocket`. On Node 20, `ws`'s default export. Null: SSE only. */
  WebSocket?: WebSocketConstructor | null
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch
  /** Connection attempts per transport, in place of the defaults (tests, custom transports). */
  transports?: Partial<Record<TransportKind, OpenTransport>>
  /** WebSocket attempts in a row that end before `ready` after which SSE takes over (default 2). */
  fallbackAfter?: number
}

/**
 * A notification to show: `live` as it happened, or replayed by a catch-up after a reconnect.
 * `group`: the group it joined, as it stands with it (live only): collapse the rows of one `group.id`.
 */
export interface NotificationEvent {
  notification: FeedNotification
  cursor: string
  seq: number
  live: boolean
  group?: GroupSummary
}

/** Which history to list: the inbox (default) or `archived`. */
export interface ArchiveView {
  archived?: boolean
}

/** A change of the feed's state (in any tab, or by any client of the user), in `rev` order. */
export interface StateEvent {
  rev: number
  changes: StateChange[]
  live: boolean
}

/**
 * What a NotifyClient tells its listeners. `reload`: what the app shows may be incomplete — load the
 * newest history page (`refresh`: merge it in; `reset`: drop what is shown first, the feed began anew).
 * `unread` comes in the feed's order (docs/protocol.md, rev): never an older count after a newer one.
 */
export interface FeedEvents {
  status: ConnectionStatus
  ready: { user: User }
  notification: NotificationEvent
  unread: number
  /** The notifications after the seen mark (the bell); absent from older gateways. */
  unseen: number
  state: StateEvent
  /** The mute lists changed (in any tab). */
  preferences: Muted
  reload: 'refresh' | 'reset'
  /** The resume point moved: store it to resume from after a restart (`since`). */
  position: Position
}

type Listeners = { [K in keyof FeedEvents]: Set<(event: FeedEvents[K]) => void> }

/**
 * One user's live feed from a kafka-notify gateway: the connection (WebSocket, SSE fallback,
 * reconnects with backoff, liveness), the sequencing (resume by cursor, a hole → resync),
 * unread counts in order, history and read marks. No DOM: for browsers and Node 20+.
 */
export class NotifyClient {
  readonly api: GatewayApi
  readonly #options: NotifyClientOptions
  readonly #connection: Connection
  readonly #sync: FeedSync
  readonly #order = new UnreadOrder()
  readonly #listeners: Listeners = {
    status: new Set(), ready: new Set(), notification: new Set(), unread: new Set(), unseen: new Set(), state: new Set(), preferences: new Set(), reload: new Set(), position: new Set()
  }

  #unread = 0
  #unseen = 0

  constructor (options: NotifyClientOptions) {
    this.#options = options
    this.api = new GatewayApi(options.baseUrl, options.fetch)
    this.#sync = new FeedSync({ onPosition: (position) => this.#emit('position', position) })
    this.#sync.resumeFrom(options.since ?? null)
    const WebSocketClass = options.WebSocket === undefined ? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket : options.WebSocket
    const transports: Partial<Record<TransportKind, OpenTransport>> = options.transports ?? {
      ...(WebSocketClass == null ? {} : { websocket: webSocketTransport(options.baseUrl, WebSocketClass) }),
      sse: eventStreamTransport(options.baseUrl, options.fetch)
    }
    this.#connection = new Connection({
      transports,
      ...(options.fallbackAfter === undefined ? {} : { fallbackAfter: options.fallbackAfter }),
      dial: () => ({ token: options.token(), since: this.#sync.since }),
      onFrame: (frame, dial) => this.#frame(frame, dial),
      onStatus: (status) => this.#emit('status', status),
      renewToken: () => options.renewToken?.() ?? Promise.resolve(false)
    })
  }

  /** Listens to one kind of event; returns the function that stops listening. */
  on<K extends keyof FeedEvents> (type: K, listener: (event: FeedEvents[K]) => void): () => void {
    const listeners = this.#listeners[type] as Set<(event: FeedEvents[K]) => void>
    listeners.add(listener)
    return () => listeners.delete(listener)
  }

  /** Where the next connection resumes from. */
  get since (): Position | null {
    return this.#sync.since
  }

  /** The unread count, as of the newest count seen. */
  get unread (): number {
    return this.#unread
  }

  /** The notifications after the seen mark, as of the newest count seen. */
  get unseen (): number {
    return this.#unseen
  }

  get state (): Connection['state'] {
    return this.#connection.state
  }

  /** Adopts a stored resume point, unless history already gave a newer one. */
  resumeFrom (position: Position | null): void {
    this.#sync.resumeFrom(position)
  }

  /** Connects, and stays connected (reconnecting with backoff) until `stop()`. */
  start (): void {
    this.#connection.start()
  }

  stop (): void {
    this.#connection.stop()
  }

  /** The token was renewed ahead of expiry: switch to it without a gap. */
  tokenRenewed (): void {
    this.#connection.restart()
  }

  /** Skips the rest of a backoff wait, e.g. when the device comes back online. */
  retryNow (): void {
    this.#connection.retryNow()
  }

  /**
   * One page of history, newest first: the newest without `before`, then each page's `nextCursor`.
   * The first page is where a feed with no stored position resumes from. A `before` from another
   * epoch of the inbox rejects with 409 STALE_CURSOR (`staleCursor(error)`): load the newest again.
   */
  async history (before: string | null = null, limit?: number, view: ArchiveView = {}): Promise<HistoryPage<HistoryItem>> {
    return await this.#page(before, view, (token) => this.api.listNotifications(token, before, limit, view.archived))
  }

  /** One page of grouped history (one item per group, newest group first), as `history()` pages. */
  async groups (before: string | null = null, limit?: number, view: ArchiveView = {}): Promise<HistoryPage<GroupedItem>> {
    return await this.#page(before, view, (token) => this.api.listGroups(token, before, limit, view.archived))
  }

  async #page<I extends HistoryItem | GroupedItem> (before: string | null, view: ArchiveView, list: (token: string) => Promise<HistoryPage<I>>): Promise<HistoryPage<I>> {
    try {
      const page = await this.#authed(list)
      // The newest page of the inbox is a resume point; the archive's is not (newer items may be in the inbox).
      this.#sync.history(page.items, before === null && view.archived !== true)
      if (before === null) {
        this.#unread = page.unread
        if (page.unseen !== undefined) this.#unseen = page.unseen
      }
      return page
    } catch (error) {
      if (staleCursor(error)) this.#sync.stale()
      throw error
    }
  }

  /**
   * Marks read everything up to the newest notification seen (by seq, which need not be the one on
   * top). Resolves with that position and the unread count after it, or null when nothing was seen.
   */
  async markAllRead (): Promise<{ upTo: Position, unread: number } | null> {
    const upTo = this.#sync.upTo
    if (upTo === null) return null
    try {
      const { unread, rev } = await this.#authed((token) => this.api.markRead(token, upTo.cursor))
      // A frame may have brought a newer count already.
      if (this.#order.accept({ rev })) this.#unread = unread
      return { upTo, unread: this.#unread }
    } catch (error) {
      if (staleCursor(error)) this.#sync.stale()
      throw error
    }
  }

  /**
   * Marks seen everything up to the newest notification seen (the bell goes to 0; read marks stay).
   * Resolves with the counts after it, or null when nothing was seen.
   */
  async markSeen (): Promise<FeedCounts | null> {
    const upTo = this.#sync.upTo
    if (upTo === null) return null
    return await this.#change((token) => this.api.markSeen(token, upTo.cursor))
  }

  /** Read, unread, archive or unarchive the selected notifications or whole groups. */
  async change (route: StateRoute, selection: Selection): Promise<FeedCounts> {
    return await this.#change((token) => this.api.changeState(token, route, selection))
  }

  /**
   * "Clear all": archives everything up to the newest notification seen (one that arrives after it
   * stays). Resolves null when nothing was seen.
   */
  async archiveAll (): Promise<FeedCounts | null> {
    const upTo = this.#sync.upTo
    if (upTo === null) return null
    return await this.#change((token) => this.api.changeState(token, 'archive', { upTo: upTo.cursor }))
  }

  /** Deletes a notification, or with `group` every notification of the group `id`. */
  async delete (id: string, group = false): Promise<FeedCounts> {
    return await this.#change((token) => this.api.delete(token, id, group))
  }

  async preferences (): Promise<Muted> {
    return await this.#authed((token) => this.api.getPreferences(token))
  }

  /** Replaces the mute lists; every tab hears `preferences`. */
  async setPreferences (muted: Muted): Promise<Muted> {
    return await this.#authed((token) => this.api.putPreferences(token, muted))
  }

  /** A state change's answer: its counts are taken unless a frame already brought newer ones. */
  async #change (call: (token: string) => Promise<FeedCounts>): Promise<FeedCounts> {
    try {
      const counts = await this.#authed(call)
      if (this.#order.accept({ rev: counts.rev })) {
        this.#setUnread(counts.unread)
        this.#setUnseen(counts.unseen)
      }
      return counts
    } catch (error) {
      if (staleCursor(error)) this.#sync.stale()
      throw error
    }
  }

  /** Calls the API with the current token, renewing it once if the gateway refuses it. */
  async #authed<T> (call: (token: string) => Promise<T>): Promise<T> {
    try {
      return await call(this.#options.token())
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || !(await (this.#options.renewToken?.() ?? false))) throw error
      return await call(this.#options.token())
    }
  }

  #frame (frame: ServerFrame, dial: Dial): void {
    switch (frame.type) {
      case 'ready':
        this.#order.reset({ rev: frame.rev, seq: frame.seq })
        this.#emit('ready', { user: frame.user })
        this.#setUnread(frame.unread)
        if (frame.unseen !== undefined) this.#setUnseen(frame.unseen)
        // Without a catch-up, what arrived since the last history load is only in history.
        if (this.#sync.ready(frame, dial.since).refreshHistory) this.#emit('reload', 'refresh')
        break
      case 'notification': {
        const verdict = this.#sync.notification(frame)
        if (verdict === 'hole') return this.#connection.resync()
        if (verdict !== 'live' && verdict !== 'catch-up') return
        const { notification, cursor, seq, group } = frame
        // A deleted notification's tombstone keeps its seq (counted above) and shows nothing.
        if ('deleted' in notification) return
        this.#emit('notification', { notification, cursor, seq, live: verdict === 'live', ...(group === undefined ? {} : { group }) })
        if (frame.unread !== undefined) this.#countFrom(frame.unread, { rev: frame.rev, seq })
        // A live notification is after the seen mark (replayed ones are counted in `ready`).
        if (verdict === 'live' && frame.rev !== undefined) this.#setUnseen(this.#unseen + 1)
        break
      }
      case 'state': {
        const verdict = this.#sync.state(frame)
        if (verdict === 'hole') return this.#connection.resync()
        if (verdict !== 'live' && verdict !== 'catch-up') return
        this.#emit('state', { rev: frame.rev, changes: frame.changes, live: verdict === 'live' })
        // State frames come in rev order: their counts are the newest.
        this.#countFrom(frame.unread, { rev: frame.rev })
        this.#setUnseen(frame.unseen)
        break
      }
      case 'preferences':
        this.#emit('preferences', frame.muted)
        break
      case 'synced': {
        const verdict = this.#sync.synced(frame)
        if (verdict === 'hole') this.#connection.resync()
        // What is shown may have a gap, or be from a lost store: start over from history.
        else if (verdict === 'reset') this.#emit('reload', 'reset')
        break
      }
      case 'unread':
        this.#countFrom(frame.unread, { rev: frame.rev })
        break
      case 'ping':
        if (this.#sync.ping(frame) === 'hole') return this.#connection.resync()
        if (frame.unread !== undefined) this.#countFrom(frame.unread, { rev: frame.rev, seq: frame.seq })
        break
    }
  }

  /**
   * A count stamped so is taken unless one already taken is newer; either way listeners hear the
   * newest count (an app may check what it shows against it).
   */
  #countFrom (count: number, stamp: CountStamp): void {
    this.#setUnread(this.#order.accept(stamp) ? count : this.#unread)
  }

  #setUnread (count: number): void {
    this.#unread = count
    this.#emit('unread', count)
  }

  #setUnseen (count: number): void {
    this.#unseen = count
    this.#emit('unseen', count)
  }

  #emit<K extends keyof FeedEvents> (type: K, event: FeedEvents[K]): void {
    for (const listener of this.#listeners[type] as Set<(event: FeedEvents[K]) => void>) listener(event)
  }
}

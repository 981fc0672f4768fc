import { describeError, listNotifications, markRead, staleCursor } from './api.js'
import type { Dial } from './live-socket.js'
import type { FeedEntry } from './feed-item.js'
import type { FeedList } from './feed-list.js'
import { FeedSync, type Position } from './feed-sync.js'
import type { HistoryItem, HistoryPage, ServerFrame } from './types.js'
import { UnreadOrder, type CountStamp } from './unread-order.js'

/** The parts of the page the feed draws on. */
export interface FeedView {
  readonly list: FeedList
  showUnread: (count: number) => void
  showError: (message: string) => void
  /** Busy while a history page loads; `more` once it is known whether older pages exist. */
  showHistory: (state: { busy: boolean, more: boolean }) => void
  announce: (message: string) => void
}

export interface LiveFeedOptions {
  view: FeedView
  /** Runs an API call with the session's token (see Session.authed). */
  authed: <T>(call: (token: string) => Promise<T>) => Promise<T>
  /** Reconnects the socket from `since`: the stream had a hole. */
  resync: () => void
  onPosition: (position: Position) => void
}

/**
 * `initial` and `reset` load the newest page (and set where "Load older" continues);
 * `older` loads the next page; `refresh` merges the newest page into what is shown.
 */
type HistoryLoad = 'initial' | 'reset' | 'refresh' | 'older'

/**
 * One signed-in user's feed: history pages and socket frames merged into the list without
 * holes or repeats (FeedSync decides, this applies), the unread count, and "mark all read".
 * A new sign-in makes a new LiveFeed; `close()` makes the old one ignore late answers.
 */
export class LiveFeed {
  readonly #view: FeedView
  readonly #authed: LiveFeedOptions['authed']
  readonly #resync: () => void
  readonly #sync: FeedSync
  readonly #order = new UnreadOrder()
  #unread = 0
  /** Where "Load older" continues (null: no older page). */
  #older: string | null = null
  #closed = false

  constructor (options: LiveFeedOptions) {
    this.#view = options.view
    this.#authed = options.authed
    this.#resync = options.resync
    this.#sync = new FeedSync({ onPosition: options.onPosition })
  }

  /** Where the next socket resumes from. */
  get since (): Position | null {
    return this.#sync.since
  }

  /** Loads the first page; `stored` is the resume point to use when history has none. */
  async start (stored: Position | null): Promise<void> {
    this.#view.list.clear()
    this.#showUnread(0)
    await this.#load('initial')
    this.#sync.resumeFrom(stored)
  }

  close (): void {
    this.#closed = true
  }

  frame (frame: ServerFrame, dial: Dial): void {
    switch (frame.type) {
      case 'ready':
        this.#order.reset({ rev: frame.rev, seq: frame.seq })
        this.#syncUnread(frame.unread)
        if (this.#sync.ready(frame, dial.since).refreshHistory) void this.#load('refresh')
        break
      case 'notification': {
        const verdict = this.#sync.notification(frame)
        if (verdict === 'hole') return this.#resync()
        if (verdict !== 'live' && verdict !== 'catch-up') return
        const live = verdict === 'live'
        const { notification, cursor } = frame
        const latencyMs = live ? Date.now() - Date.parse(notification.createdAt) : null
        const added = this.#view.list.add({ notification, cursor, seq: frame.seq, read: false, latencyMs }, 'live')
        if (added && live) this.#view.announce(notification.message)
        if (frame.unread !== undefined) this.#countFrom(frame.unread, { rev: frame.rev, seq: frame.seq })
        break
      }
      case 'synced': {
        const verdict = this.#sync.synced(frame)
        if (verdict === 'hole') this.#resync()
        // What is shown may have a gap, or be from a lost store: start over from history.
        else if (verdict === 'reset') void this.#load('reset')
        break
      }
      case 'unread':
        this.#countFrom(frame.unread, { rev: frame.rev })
        break
      case 'ping':
        if (this.#sync.ping(frame) === 'hole') return this.#resync()
        if (frame.unread !== undefined) this.#countFrom(frame.unread, { rev: frame.rev, seq: frame.seq })
        break
    }
  }

  loadOlder (): void {
    void this.#load('older')
  }

  /** Marks read up to the newest item seen (by seq), which need not be the one on top. */
  async markAllRead (): Promise<void> {
    const upTo = this.#sync.upTo
    if (upTo === null) return this.#showUnread(this.#unread)
    try {
      const { unread, rev } = await this.#authed((token) => markRead(token, upTo.cursor))
      if (this.#closed) return
      this.#view.list.markReadUpTo(upTo.seq)
      // A frame may have brought a newer count already; the button comes back either way.
      this.#showUnread(this.#order.accept({ rev }) ? unread : this.#unread)
    } catch (error) {
      if (this.#closed) return
      if (staleCursor(error)) {
        this.#sync.stale()
        await this.#load('reset')
      } else {
        this.#view.showError(describeError(error))
      }
      this.#showUnread(this.#unread)
    }
  }

  refreshTimes (): void {
    this.#view.list.refreshTimes()
  }

  async #load (kind: HistoryLoad): Promise<void> {
    const before = kind === 'older' ? this.#older : null
    this.#view.showHistory({ busy: true, more: this.#older !== null })
    if (kind === 'reset') this.#view.list.clear()
    try {
      const page: HistoryPage = await this.#authed((token) => listNotifications(token, before))
      if (this.#closed) return
      for (const item of page.items) this.#view.list.add(entry(item), 'history')
      this.#sync.history(page.items, kind !== 'older')
      if (kind !== 'refresh') this.#older = page.nextCursor
      if (kind !== 'older') this.#showUnread(page.unread)
      this.#view.showError('')
    } catch (error) {
      if (this.#closed) return
      // "Load older" with a cursor from before the inbox lost its store: start over from the newest page.
      if (kind === 'older' && staleCursor(error)) {
        this.#sync.stale()
        this.#older = null
        return await this.#load('reset')
      }
      this.#view.showError(`Could not load notifications: ${describeError(error)}`)
    }
    this.#view.showHistory({ busy: false, more: this.#older !== null })
  }

  #showUnread (count: number): void {
    this.#unread = count
    this.#view.showUnread(count)
  }

  /** Applies a count stamped so, unless one already applied is newer (then the highlights are checked against that one). */
  #countFrom (count: number, stamp: CountStamp): void {
    if (this.#order.accept(stamp)) this.#syncUnread(count)
    else if (this.#unread < this.#view.list.unreadShown) void this.#load('refresh')
  }

  /** Applies the server's unread count, and fixes read highlights when another tab read some. */
  #syncUnread (count: number): void {
    this.#showUnread(count)
    if (count === 0) this.#view.list.markAllRead()
    else if (count < this.#view.list.unreadShown) void this.#load('refresh')
  }
}

function entry (item: HistoryItem): FeedEntry {
  return { notification: item, cursor: item.cursor, seq: item.seq, read: item.read, latencyMs: null }
}

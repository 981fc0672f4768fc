import type { NotifyClient, NotificationEvent } from '../../client/notify-client.js'
import { staleCursor } from '../../client/api.js'
import type { HistoryItem } from '../../client/types.js'
import { describeError } from './describe-error.js'
import type { FeedEntry } from './feed-item.js'
import type { FeedList } from './feed-list.js'

/** The parts of the page the feed draws on. */
export interface FeedView {
  readonly list: FeedList
  showUnread: (count: number) => void
  showError: (message: string) => void
  /** Busy while a history page loads; `more` once it is known whether older pages exist. */
  showHistory: (state: { busy: boolean, more: boolean }) => void
  announce: (message: string) => void
}

/**
 * `initial` and `reset` load the newest page (and set where "Load older" continues);
 * `older` loads the next page; `refresh` merges the newest page into what is shown.
 */
type HistoryLoad = 'initial' | 'reset' | 'refresh' | 'older'

/**
 * One signed-in user's feed on the page: what the client library (client/) delivers — history
 * pages, notifications without holes or repeats, unread counts in order — drawn into the list,
 * with "Load older" and "Mark all read". A new sign-in makes a new LiveFeed; `close()` makes the
 * old one ignore late answers.
 */
export class LiveFeed {
  readonly #view: FeedView
  readonly #client: NotifyClient
  /** Where "Load older" continues (null: no older page). */
  #older: string | null = null
  #closed = false

  constructor (view: FeedView, client: NotifyClient) {
    this.#view = view
    this.#client = client
    client.on('notification', (event) => this.#notification(event))
    client.on('unread', (count) => this.#syncUnread(count))
    client.on('reload', (kind) => { void this.#load(kind) })
  }

  /** Loads the first page. */
  async start (): Promise<void> {
    this.#view.list.clear()
    this.#view.showUnread(0)
    await this.#load('initial')
  }

  close (): void {
    this.#closed = true
  }

  loadOlder (): void {
    void this.#load('older')
  }

  async markAllRead (): Promise<void> {
    try {
      const marked = await this.#client.markAllRead()
      if (this.#closed) return
      if (marked !== null) this.#view.list.markReadUpTo(marked.upTo.seq)
    } catch (error) {
      if (this.#closed) return
      if (staleCursor(error)) await this.#load('reset')
      else this.#view.showError(describeError(error))
    }
    // The button comes back either way.
    this.#view.showUnread(this.#client.unread)
  }

  refreshTimes (): void {
    this.#view.list.refreshTimes()
  }

  #notification ({ notification, cursor, seq, live }: NotificationEvent): void {
    if (this.#closed) return
    const latencyMs = live ? Date.now() - Date.parse(notification.createdAt) : null
    const added = this.#view.list.add({ notification, cursor, seq, read: false, latencyMs }, 'live')
    if (added && live) this.#view.announce(notification.message)
  }

  async #load (kind: HistoryLoad): Promise<void> {
    const before = kind === 'older' ? this.#older : null
    this.#view.showHistory({ busy: true, more: this.#older !== null })
    if (kind === 'reset') this.#view.list.clear()
    try {
      const page = await this.#client.history(before)
      if (this.#closed) return
      for (const item of page.items) this.#view.list.add(entry(item), 'history')
      if (kind !== 'refresh') this.#older = page.nextCursor
      if (kind !== 'older') this.#view.showUnread(page.unread)
      this.#view.showError('')
    } catch (error) {
      if (this.#closed) return
      // "Load older" with a cursor from before the inbox lost its store: start over from the newest page.
      if (kind === 'older' && staleCursor(error)) {
        this.#older = null
        return await this.#load('reset')
      }
      this.#view.showError(`Could not load notifications: ${describeError(error)}`)
    }
    this.#view.showHistory({ busy: false, more: this.#older !== null })
  }

  /** Shows the newest unread count, and fixes read highlights when another tab read some. */
  #syncUnread (count: number): void {
    if (this.#closed) return
    this.#view.showUnread(count)
    if (count === 0) this.#view.list.markAllRead()
    else if (count < this.#view.list.unreadShown) void this.#load('refresh')
  }
}

function entry (item: HistoryItem): FeedEntry {
  return { notification: item, cursor: item.cursor, seq: item.seq, read: item.read, latencyMs: null }
}

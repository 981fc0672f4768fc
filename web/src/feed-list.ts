import { type FeedEntry, feedItem, relativeTime } from './feed-item.js'

/** `live` entries go above items with the same time, `history` entries below them. */
export type FeedSource = 'live' | 'history'

/** The notification list, newest first by time, each notification shown once. */
export class FeedList {
  readonly #list: HTMLElement
  readonly #empty: HTMLElement
  readonly #items = new Map<string, HTMLLIElement>()

  constructor (list: HTMLElement, empty: HTMLElement) {
    this.#list = list
    this.#empty = empty
  }

  get unreadShown (): number {
    return this.#list.querySelectorAll('[data-read="false"]').length
  }

  /** Adds an entry in time order; returns false if it is already shown (history then refreshes its read flag). */
  add (entry: FeedEntry, source: FeedSource): boolean {
    const existing = this.#items.get(entry.notification.id)
    if (existing !== undefined) {
      if (source === 'history') existing.dataset.read = String(entry.read)
      return false
    }
    const item = feedItem(entry)
    const time = Number(item.dataset.created)
    let before: Element | null = null
    for (const child of this.#list.children) {
      const other = Number((child as HTMLElement).dataset.created)
      if (source === 'live' ? other <= time : other < time) {
        before = child
        break
      }
    }
    this.#list.insertBefore(item, before)
    this.#items.set(entry.notification.id, item)
    this.#empty.hidden = true
    return true
  }

  /** Marks every item up to this seq as read, whatever its place in the list (time order is not feed order). */
  markReadUpTo (seq: number): void {
    for (const item of this.#items.values()) {
      if (Number(item.dataset.seq) <= seq) item.dataset.read = 'true'
    }
  }

  markAllRead (): void {
    for (const item of this.#items.values()) item.dataset.read = 'true'
  }

  clear (): void {
    this.#list.replaceChildren()
    this.#items.clear()
    this.#empty.hidden = false
  }

  refreshTimes (now = Date.now()): void {
    for (const time of this.#list.querySelectorAll('time')) {
      time.textContent = relativeTime(Date.parse(time.dateTime), now)
    }
  }
}

import { el } from './dom.js'
import type { FeedNotification } from './types.js'

export interface FeedEntry {
  notification: FeedNotification
  cursor: string
  /** The notification's place in the user's feed. */
  seq: number
  read: boolean
  /** Receive time minus createdAt, for notifications that arrived live. */
  latencyMs: number | null
}

/** `live` entries go above items with the same time, `history` entries below them. */
export type FeedSource = 'live' | 'history'

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' })

export function relativeTime (time: number, now = Date.now()): string {
  const seconds = Math.round((time - now) / 1000)
  const size = Math.abs(seconds)
  if (size < 45) return relative.format(0, 'second')
  if (size < 45 * 60) return relative.format(Math.round(seconds / 60), 'minute')
  if (size < 22 * 3600) return relative.format(Math.round(seconds / 3600), 'hour')
  return relative.format(Math.round(seconds / 86_400), 'day')
}

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
    const item = this.#render(entry)
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

  #render ({ notification, cursor, seq, read, latencyMs }: FeedEntry): HTMLLIElement {
    const created = Date.parse(notification.createdAt)
    const actor = notification.actor?.name ?? 'kafka-notify'
    const meta = el('p', { class: 'meta' },
      el('span', { class: 'new' }, 'New'),
      el('span', { class: 'actor' }, actor),
      ' · ',
      el('time', { datetime: notification.createdAt, title: new Date(created).toLocaleString() }, relativeTime(created))
    )
    if (latencyMs !== null) {
      meta.append(' · ', el('span', { class: 'latency', 'data-testid': 'latency' }, `arrived in ${Math.max(0, Math.round(latencyMs))} ms`))
    }
    const item = el('li', {
      class: 'item',
      'data-testid': 'feed-item',
      'data-id': notification.id,
      'data-type': notification.type,
      'data-cursor': cursor,
      'data-seq': String(seq),
      'data-created': String(created),
      'data-read': String(read)
    },
    el('span', { class: 'avatar', 'aria-hidden': 'true' }, (Array.from(actor)[0] ?? '').toUpperCase()),
    el('div', { class: 'body' },
      el('p', { class: 'message' }, notification.message),
      meta
    ))
    return item
  }
}

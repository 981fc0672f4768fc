import { type FeedEntry, feedItem, relativeTime } from './feed-item.js'

const TOGGLED: Record<string, string> = { read: 'unread', unread: 'read', archive: 'unarchive', unarchive: 'archive' }

/** `live` entries go above items with the same time, `history` entries below them. */
export type FeedSource = 'live' | 'history'

/**
 * The notification list: one row per group, newest first by time. `unreadOnly` hides rows with
 * nothing unread (the Unread tab). When the row that had the focus goes (archived, deleted, read in
 * the Unread tab), the focus moves to the same place of the next row, or the previous one, or the
 * list's heading, so a keyboard user never lands on the page's top.
 */
export class FeedList {
  readonly #list: HTMLElement
  readonly #empty: HTMLElement
  readonly #heading: HTMLElement
  /** Rows by group id. */
  readonly #rows = new Map<string, { entry: FeedEntry, item: HTMLLIElement }>()
  #unreadOnly = false

  constructor (list: HTMLElement, empty: HTMLElement, heading: HTMLElement) {
    this.#list = list
    this.#empty = empty
    this.#heading = heading
  }

  get unreadShown (): number {
    return this.#list.querySelectorAll('[data-read="false"]').length
  }

  /** The entries shown (in no particular order). */
  get entries (): FeedEntry[] {
    return [...this.#rows.values()].map(({ entry }) => entry)
  }

  /** Shows only rows with something unread (the Unread tab), or every row. */
  showUnreadOnly (value: boolean): void {
    this.#unreadOnly = value
    this.#showRows()
  }

  /**
   * Adds an entry in time order, or replaces its group's row with it when it is newer (a live
   * notification joined the group); returns false if this notification is already shown.
   */
  add (entry: FeedEntry, source: FeedSource): boolean {
    const existing = this.#rows.get(entry.group.id)
    if (existing !== undefined && (existing.entry.notification.id === entry.notification.id || existing.entry.seq > entry.seq)) {
      if (source === 'history' && existing.entry.notification.id === entry.notification.id) this.#put(entry, source)
      return false
    }
    this.#put(entry, source)
    this.#showRows()
    return true
  }

  /** Shows exactly these entries (a page loaded again), keeping the focus in place where it can. */
  replace (entries: readonly FeedEntry[]): void {
    const keep = new Set(entries.map((entry) => entry.group.id))
    const focus = this.#focused()
    for (const [id, { item }] of this.#rows) {
      if (!keep.has(id)) {
        item.remove()
        this.#rows.delete(id)
      }
    }
    for (const entry of entries) this.#put(entry, 'history')
    this.#showRows(focus)
  }

  /** Marks every row up to this seq as read, whatever its place in the list (time order is not feed order). */
  markReadUpTo (seq: number): void {
    this.update((entry) => entry.seq <= seq ? { ...entry, group: { ...entry.group, unread: 0 } } : entry)
  }

  /**
   * Redraws the rows `change` changes (a new entry), removes those it drops (null), and leaves the
   * rows it returns as they are; the focus stays in the list.
   */
  update (change: (entry: FeedEntry) => FeedEntry | null): void {
    const focus = this.#focused()
    for (const [id, { entry, item }] of this.#rows) {
      const next = change(entry)
      if (next === entry) continue
      if (next === null) {
        item.remove()
        this.#rows.delete(id)
      } else {
        this.#put(next, 'history')
      }
    }
    this.#showRows(focus)
  }

  clear (): void {
    this.#list.replaceChildren()
    this.#rows.clear()
    this.#showRows()
  }

  refreshTimes (now = Date.now()): void {
    for (const time of this.#list.querySelectorAll('time')) {
      time.textContent = relativeTime(Date.parse(time.dateTime), now)
    }
  }

  /** Draws the entry's row in its place (a new row, or in place of its group's, focus kept). */
  #put (entry: FeedEntry, source: FeedSource): void {
    const old = this.#rows.get(entry.group.id)
    const focus = old === undefined ? null : this.#focused()
    const item = feedItem(entry)
    old?.item.remove()
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
    this.#rows.set(entry.group.id, { entry, item })
    if (focus !== null && focus.group === entry.group.id) this.#refocus(focus)
  }

  /** Hides what the tab does not show, and moves the focus off a row that went. */
  #showRows (focus = this.#focused()): void {
    let shown = 0
    for (const { entry, item } of this.#rows.values()) {
      item.hidden = this.#unreadOnly && entry.group.unread === 0
      if (!item.hidden) shown++
    }
    this.#empty.hidden = shown > 0
    if (focus !== null) this.#refocus(focus)
  }

  /** Where the focus is in the list: its row's group, that row's index among visible rows, and which control. */
  #focused (): { group: string, index: number, action: string | null } | null {
    const active = document.activeElement
    if (!(active instanceof HTMLElement) || !this.#list.contains(active)) return null
    const item = active.closest<HTMLElement>('[data-testid="feed-item"]')
    if (item === null) return null
    return { group: item.dataset.group ?? '', index: this.#visible().indexOf(item), action: active.dataset.action ?? null }
  }

  #refocus ({ group, index, action }: { group: string, index: number, action: string | null }): void {
    const visible = this.#visible()
    const row = visible.find((item) => item.dataset.group === group) ?? visible[Math.min(index, visible.length - 1)]
    if (row === undefined) {
      this.#heading.focus()
      return
    }
    if (document.activeElement !== document.body && row.contains(document.activeElement)) return
    // After "Mark read" the row's button says "Mark unread": the focus stays on it.
    const actions = action === null ? [] : [action, TOGGLED[action]]
    const control = actions.map((name) => row.querySelector<HTMLElement>(`[data-action="${name}"]`)).find((node) => node !== null) ??
      row.querySelector<HTMLElement>('a, button')
    control?.focus()
  }

  #visible (): HTMLElement[] {
    return [...this.#list.children].filter((child): child is HTMLElement => child instanceof HTMLElement && !child.hidden)
  }
}

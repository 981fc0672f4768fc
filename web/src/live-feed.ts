import type { NotifyClient, NotificationEvent } from '../../client/notify-client.js'
import { staleCursor } from '../../client/api.js'
import type { GroupedItem, Muted, StateChange } from '../../client/types.js'
import { describeError } from './describe-error.js'
import type { FeedEntry } from './feed-item.js'
import type { FeedList } from './feed-list.js'
import type { InboxView } from './inbox-tabs.js'
import type { ItemAction } from './item-actions.js'

/** The parts of the page the feed draws on. */
export interface FeedView {
  readonly list: FeedList
  showUnread: (count: number) => void
  showUnseen: (count: number) => void
  showMuted: (muted: Muted) => void
  showError: (message: string) => void
  /** Busy while a history page loads; `more` once it is known whether older pages exist. */
  showHistory: (state: { busy: boolean, more: boolean }) => void
  announce: (message: string) => void
}

/**
 * `initial` and `reset` load the newest page (and set where "Load older" continues);
 * `older` loads the next page; `refresh` loads the newest page again in place of what is shown
 * (keeping rows that arrived live after it).
 */
type HistoryLoad = 'initial' | 'reset' | 'refresh' | 'older'

const PAGE_SIZE = 50
const MAX_PAGE_SIZE = 100

/** What an action says in the live region once done. */
const DONE: Record<ItemAction, string> = {
  read: 'Marked read',
  unread: 'Marked unread',
  archive: 'Archived',
  unarchive: 'Moved back to the inbox',
  delete: 'Deleted',
  mute: 'Muted'
}

/**
 * One signed-in user's feed on the page: what the client library (client/) delivers — grouped
 * history pages, notifications without holes or repeats (collapsed into their group's row), state
 * changes in `rev` order, unread and unseen counts — drawn into the list of the selected view.
 * A state change (from this tab or any other) reloads the view's newest page: the server's groups
 * and counts are the truth. A new sign-in makes a new LiveFeed; `close()` makes the old one ignore
 * late answers.
 */
export class LiveFeed {
  readonly #view: FeedView
  readonly #client: NotifyClient
  #inbox: InboxView = 'all'
  /** Where "Load older" continues (null: no older page). */
  #older: string | null = null
  #closed = false
  /** The load running, and whether another must follow it (a change came meanwhile). */
  #loading: Promise<void> | null = null
  #again: HistoryLoad | null = null
  /** The highest seq of a notification shown live: rows above the value it had when a page was asked for came after it. */
  #liveSeq = 0

  constructor (view: FeedView, client: NotifyClient) {
    this.#view = view
    this.#client = client
    client.on('notification', (event) => this.#notification(event))
    client.on('unread', (count) => { if (!this.#closed) this.#view.showUnread(count) })
    client.on('unseen', (count) => { if (!this.#closed) this.#view.showUnseen(count) })
    client.on('state', ({ changes }) => this.#state(changes))
    client.on('preferences', (muted) => { if (!this.#closed) this.#view.showMuted(muted) })
    client.on('reload', (kind) => this.#reload(kind))
  }

  /** Loads the first page and the mute lists. */
  async start (): Promise<void> {
    this.#view.list.clear()
    this.#view.showUnread(0)
    this.#view.showUnseen(0)
    this.#client.preferences().then((muted) => { if (!this.#closed) this.#view.showMuted(muted) }, () => {})
    this.#reload('initial')
    await this.#loading
  }

  close (): void {
    this.#closed = true
  }

  /** Shows another view: Unread and All are the inbox (Unread hides what is read), Archived the archive. */
  show (inbox: InboxView): void {
    const archive = (inbox === 'archived') !== (this.#inbox === 'archived')
    this.#inbox = inbox
    this.#view.list.showUnreadOnly(inbox === 'unread')
    if (archive) {
      this.#view.list.clear()
      this.#older = null
      this.#reload('reset')
    }
  }

  loadOlder (): void {
    this.#reload('older')
  }

  async markAllRead (): Promise<void> {
    await this.#act(async () => {
      const marked = await this.#client.markAllRead()
      if (marked !== null && !this.#closed) this.#view.list.markReadUpTo(marked.upTo.seq)
    }, 'Marked all read')
    // The button comes back either way.
    this.#view.showUnread(this.#client.unread)
  }

  /** "Clear all": archives everything up to the newest notification seen. */
  async clearAll (): Promise<void> {
    await this.#act(() => this.#client.archiveAll(), 'Cleared all: find them under Archived')
  }

  /** An item's action, on every notification of its group. */
  async act (action: ItemAction, groupId: string, actor: { id: string, name: string } | null, mute: (actorId: string) => Promise<void>): Promise<void> {
    await this.#act(async () => {
      if (action === 'mute') {
        if (actor !== null) await mute(actor.id)
      } else if (action === 'delete') {
        await this.#client.delete(groupId, true)
      } else {
        await this.#client.change(action, { groups: [groupId] })
      }
    }, action === 'mute' && actor !== null ? `Muted ${actor.name}` : DONE[action])
  }

  refreshTimes (): void {
    this.#view.list.refreshTimes()
  }

  async #act (call: () => Promise<unknown>, done: string): Promise<void> {
    try {
      await call()
      if (this.#closed) return
      this.#view.announce(done)
      this.#view.showError('')
    } catch (error) {
      if (this.#closed) return
      if (staleCursor(error)) this.#reload('reset')
      else this.#view.showError(describeError(error))
    }
  }

  #notification ({ notification, cursor, seq, live, group }: NotificationEvent): void {
    if (this.#closed || this.#inbox === 'archived') return
    const id = group?.id ?? notification.id
    const shown = this.#view.list.entries.find((entry) => entry.group.id === id)
    const latencyMs = live ? Date.now() - Date.parse(notification.createdAt) : null
    const actors = notification.actor === null ? [] : [notification.actor]
    const entry: FeedEntry = {
      notification,
      cursor,
      seq,
      archived: false,
      latencyMs,
      group: group === undefined
        ? { id, count: 1, actorCount: actors.length, actors, unread: 1 }
        : { id, count: group.count, actorCount: group.actorCount, actors: group.actors, unread: (shown?.group.unread ?? 0) + 1 }
    }
    this.#liveSeq = Math.max(this.#liveSeq, seq)
    const added = this.#view.list.add(entry, 'live')
    if (added && live) this.#view.announce(notification.message)
    // A replayed notification comes without its group: the server's page has it.
    if (added && !live) this.#reload('refresh')
  }

  /**
   * A state change, from this tab or another: the rows it names change at once, as far as a row
   * shows (a row is its group's newest notification: a change of some of a group's members is not
   * known here), then the view's page is loaded again for the server's groups and counts. A seen
   * mark changes no row, only the bell.
   */
  #state (changes: readonly StateChange[]): void {
    if (this.#closed || changes.every((change) => change.op === 'seen')) return
    const archived = this.#inbox === 'archived'
    for (const change of changes) this.#view.list.update((entry) => applied(change, entry, archived))
    this.#reload('refresh')
  }

  /** Loads now, or after the load running (once, whatever number of changes came meanwhile). */
  #reload (kind: HistoryLoad): void {
    if (this.#closed) return
    if (this.#loading !== null) {
      // A reset or an initial load outranks a refresh; "older" waits its turn.
      if (this.#again === null || kind !== 'refresh') this.#again = kind
      return
    }
    this.#loading = this.#load(kind).finally(() => {
      this.#loading = null
      const again = this.#again
      this.#again = null
      if (again !== null) this.#reload(again)
    })
  }

  async #load (kind: HistoryLoad): Promise<void> {
    const before = kind === 'older' ? this.#older : null
    const archived = this.#inbox === 'archived'
    this.#view.showHistory({ busy: true, more: this.#older !== null })
    if (kind === 'reset') this.#view.list.clear()
    const asked = this.#liveSeq
    try {
      // A page as long as what is shown (up to the API's 100): a reload keeps the older rows loaded.
      const limit = kind === 'older' ? PAGE_SIZE : Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, this.#view.list.entries.length))
      const page = await this.#client.groups(before, limit, { archived })
      if (this.#closed) return
      if (archived !== (this.#inbox === 'archived')) return // the view changed meanwhile: its own load follows
      const entries = page.items.map((item) => entry(item, archived))
      if (kind === 'older') {
        for (const next of entries) this.#view.list.add(next, 'history')
      } else {
        // Rows that arrived live while the page was asked for stay.
        const newer = archived ? [] : this.#view.list.entries.filter((shown) => shown.seq > asked && !entries.some((next) => next.group.id === shown.group.id && next.seq >= shown.seq))
        this.#view.list.replace([...entries, ...newer])
        this.#older = page.nextCursor
        this.#view.showUnread(this.#client.unread)
        this.#view.showUnseen(this.#client.unseen)
      }
      if (kind === 'older') this.#older = page.nextCursor
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
}

/** A row after a state change (null: it leaves the view), or the same row when the change does not name it. */
function applied (change: StateChange, row: FeedEntry, archivedView: boolean): FeedEntry | null {
  const named = 'ids' in change ? change.ids.includes(row.notification.id) : row.seq <= change.upToSeq
  if (!named) return row
  switch (change.op) {
    case 'read':
      return { ...row, group: { ...row.group, unread: 0 } }
    case 'unread':
      return { ...row, group: { ...row.group, unread: Math.max(1, row.group.unread) } }
    case 'archive':
      return archivedView ? row : null
    case 'unarchive':
      return archivedView ? null : row
    case 'delete':
      return null
    case 'seen':
      return row
  }
}

function entry (item: GroupedItem, archived: boolean): FeedEntry {
  const { groupId, count, actorCount, actors, unread } = item
  return { notification: item, cursor: item.cursor, seq: item.seq, archived: item.archived ?? archived, latencyMs: null, group: { id: groupId, count, actorCount, actors, unread } }
}

import { ApiError } from '../../client/api.js'
import type { ConnectionStatus } from '../../client/connection.js'
import type { Muted, User } from '../../client/types.js'
import { Bell } from './bell.js'
import { describeError } from './describe-error.js'
import { byId, el } from './dom.js'
import { FeedList } from './feed-list.js'
import { type InboxView, InboxTabs } from './inbox-tabs.js'
import type { ItemAction } from './item-actions.js'
import type { FeedView } from './live-feed.js'
import { People, matchUsers } from './people.js'
import { PreferencesPanel } from './preferences-panel.js'

const SIGN_IN_OPTIONS = 200

/** What an empty list says, per view. */
const EMPTY: Record<InboxView, string> = {
  unread: 'Nothing unread. You are all caught up.',
  all: 'No notifications yet. When someone follows you, it shows up here at once.',
  archived: 'Nothing archived. "Archive" on an item, or "Clear all", puts it here.'
}

/** What the user can do on the page; the view calls these, boot decides what they mean. */
export interface PageActions {
  signIn: (userId: string) => Promise<void>
  useToken: (token: string) => void
  signOut: () => void
  markAllRead: () => Promise<void>
  clearAll: () => Promise<void>
  /** An item's action on its group; `actor`: the row's actor (for mute). */
  act: (action: ItemAction, groupId: string, actor: { id: string, name: string } | null) => Promise<void>
  /** The feed is on screen, with something unseen. */
  markSeen: () => Promise<unknown>
  showInbox: (view: InboxView) => void
  /** Rejects when the server refuses or cannot be reached. */
  saveMuted: (muted: Muted) => Promise<void>
  loadOlder: () => void
  follow: (followeeId: string, idempotencyKey: string) => Promise<unknown>
  /** The browser went online or offline. */
  network: (online: boolean) => void
}

/** What the status indicator (`#connection`) shows: its `data-state` and its text. */
export function statusLabel (signedIn: boolean, status: ConnectionStatus, online: boolean): [state: string, text: string] {
  if (!signedIn) return ['disconnected', 'Signed out']
  if (status.error !== null) return ['disconnected', status.error]
  if (!online) return ['offline', 'Offline']
  if (status.state === 'connected') return ['connected', 'Live']
  return status.retrying ? ['reconnecting', 'Reconnecting…'] : ['connecting', 'Connecting…']
}

/** The page's DOM: index.html's elements, what they show, and their events (handed to PageActions). */
export class View implements FeedView {
  readonly list: FeedList
  readonly preferences: PreferencesPanel
  readonly tabs: InboxTabs
  readonly #bell: Bell
  readonly #people: People
  readonly #ui = {
    connection: byId('connection'),
    connectionText: byId('connection-text'),
    account: byId('account'),
    userName: byId('user-name'),
    unread: byId('unread-count'),
    bell: byId('bell'),
    signOut: byId<HTMLButtonElement>('sign-out'),
    signIn: byId('sign-in'),
    signInForm: byId<HTMLFormElement>('sign-in-form'),
    signInFilter: byId<HTMLInputElement>('sign-in-filter'),
    signInUser: byId<HTMLSelectElement>('sign-in-user'),
    signInButton: byId<HTMLButtonElement>('sign-in-button'),
    signInError: byId('sign-in-error'),
    tokenDetails: byId<HTMLDetailsElement>('token-details'),
    tokenForm: byId<HTMLFormElement>('token-form'),
    tokenInput: byId<HTMLInputElement>('token-input'),
    app: byId('app'),
    feedError: byId('feed-error'),
    markAllRead: byId<HTMLButtonElement>('mark-all-read'),
    clearAll: byId<HTMLButtonElement>('clear-all'),
    loadOlder: byId<HTMLButtonElement>('load-older'),
    peopleFilter: byId<HTMLInputElement>('people-filter'),
    announcer: byId('announcer')
  }

  #users: readonly User[] = []

  constructor (actions: PageActions) {
    const ui = this.#ui
    const feed = byId('feed')
    const empty = byId('feed-empty')
    this.list = new FeedList(feed, empty, byId('feed-title'))
    this.tabs = new InboxTabs(byId('inbox-tabs'), (view) => {
      this.#bell.showingInbox(view !== 'archived')
      // "Clear all" archives the inbox: nothing it could do in the archive.
      ui.clearAll.hidden = view === 'archived'
      empty.textContent = EMPTY[view]
      actions.showInbox(view)
    })
    this.#bell = new Bell(ui.bell, byId('unseen-count'), byId('inbox-tabs'), actions.markSeen)
    this.preferences = new PreferencesPanel(byId<HTMLInputElement>('mute-follows'), byId('muted-people'), {
      save: actions.saveMuted,
      nameOf: (id) => this.#users.find((user) => user.id === id)?.name ?? null,
      report: (error) => this.showError(`Could not save preferences: ${describeError(error)}`)
    })
    this.#people = new People(byId('people'), byId('people-summary'), actions.follow)

    ui.signInFilter.addEventListener('input', () => this.#renderSignInOptions())
    ui.peopleFilter.addEventListener('input', () => this.#people.update({ query: ui.peopleFilter.value }))
    ui.signInForm.addEventListener('submit', (event) => {
      event.preventDefault()
      const userId = ui.signInUser.value
      if (userId === '') return
      ui.signInButton.disabled = true
      ui.signInError.textContent = ''
      actions.signIn(userId).catch((error: unknown) => this.showSignInError(error)).finally(() => { ui.signInButton.disabled = false })
    })
    ui.tokenForm.addEventListener('submit', (event) => {
      event.preventDefault()
      const token = ui.tokenInput.value.trim()
      if (token === '') return
      ui.tokenInput.value = ''
      actions.useToken(token)
    })
    ui.signOut.addEventListener('click', () => actions.signOut())
    ui.markAllRead.addEventListener('click', () => {
      ui.markAllRead.disabled = true
      void actions.markAllRead()
    })
    ui.clearAll.addEventListener('click', () => {
      ui.clearAll.disabled = true
      void actions.clearAll().finally(() => { ui.clearAll.disabled = false })
    })
    // The bell shows the feed: scrolled to, it counts as seen.
    ui.bell.addEventListener('click', () => {
      const heading = byId('feed-title')
      heading.scrollIntoView({ block: 'start' })
      heading.focus()
    })
    feed.addEventListener('click', (event) => {
      const control = (event.target as Element).closest<HTMLButtonElement>('button[data-action]')
      const row = control?.closest<HTMLElement>('[data-testid="feed-item"]')
      if (control == null || row == null) return
      control.closest('details')?.removeAttribute('open')
      const groupId = row.dataset.group ?? ''
      const shown = this.list.entries.find((entry) => entry.group.id === groupId)?.notification.actor
      // Not disabled while it runs: a disabled button loses the focus, which must stay in the row.
      void actions.act(control.dataset.action as ItemAction, groupId, shown == null ? null : { id: shown.id, name: shown.name })
    })
    ui.loadOlder.addEventListener('click', () => actions.loadOlder())
    addEventListener('online', () => actions.network(true))
    addEventListener('offline', () => actions.network(false))
  }

  showUsers (users: readonly User[]): void {
    this.#users = users
    this.#renderSignInOptions()
    this.#people.update({ users })
  }

  /** The header and which panels show, for the signed-in user (`signedIn` with a null user: a pasted token, not yet named). */
  showUser (signedIn: boolean, user: User | null): void {
    const ui = this.#ui
    ui.signIn.hidden = signedIn
    ui.app.hidden = !signedIn
    ui.account.hidden = !signedIn
    ui.userName.textContent = user?.name ?? ''
    this.#bell.setTitle(user === null ? 'kafka-notify' : `${user.name} · kafka-notify`)
    this.#people.update({ self: user?.id ?? null })
  }

  /** `transport`: how the feed is reached (`websocket`, or `sse` after a fallback), as `data-transport`. */
  showStatus ([state, text]: [state: string, text: string], transport: string): void {
    this.#ui.connection.dataset.state = state
    this.#ui.connection.dataset.transport = transport
    this.#ui.connectionText.textContent = text
  }

  showSigningIn (): void {
    this.#ui.connectionText.textContent = 'Signing in…'
  }

  /** The unread count, on the Unread tab. */
  showUnread (count: number): void {
    const ui = this.#ui
    ui.unread.textContent = count > 99 ? '99+' : String(count)
    ui.unread.dataset.count = String(count)
    ui.unread.hidden = count === 0
    ui.unread.setAttribute('aria-label', `${count} unread`)
    ui.markAllRead.disabled = count === 0
  }

  /** The notifications not seen yet, on the bell and in the title. */
  showUnseen (count: number): void {
    this.#bell.show(count)
  }

  showMuted (muted: Muted): void {
    this.preferences.show(muted)
  }

  showError (message: string): void {
    this.#ui.feedError.textContent = message
    this.#ui.feedError.hidden = message === ''
  }

  showHistory ({ busy, more }: { busy: boolean, more: boolean }): void {
    this.#ui.loadOlder.disabled = busy
    if (!busy) this.#ui.loadOlder.hidden = !more
  }

  announce (message: string): void {
    this.#ui.announcer.textContent = message
  }

  showSignInMessage (message: string): void {
    this.#ui.signInError.textContent = message
  }

  showSignInError (error: unknown): void {
    // Without dev sign-in (AUTH_MODE=jwt) the sessions route does not exist at all.
    if (error instanceof ApiError && error.status === 404 && error.code !== 'UNKNOWN_USER') {
      this.#ui.signInError.textContent = 'This server has no dev sign-in: sign in with a token.'
      this.#ui.tokenDetails.open = true
    } else {
      this.#ui.signInError.textContent = describeError(error)
    }
  }

  /** Tells tests (and anyone watching) that boot finished. */
  markReady (): void {
    document.body.dataset.ready = 'true'
  }

  #renderSignInOptions (): void {
    const ui = this.#ui
    const { matches, total } = matchUsers(this.#users, ui.signInFilter.value, SIGN_IN_OPTIONS)
    const selected = ui.signInUser.value
    ui.signInUser.replaceChildren(...matches.map((user) => el('option', { value: user.id }, `${user.name} · #${user.id}`)))
    if (total > matches.length) {
      ui.signInUser.append(el('option', { disabled: '' }, `…and ${(total - matches.length).toLocaleString()} more: type to narrow down`))
    }
    if (matches.some((user) => user.id === selected)) ui.signInUser.value = selected
    ui.signInButton.disabled = matches.length === 0
  }
}

import { ApiError, describeError, follow, listNotifications, listUsers, markRead } from './api.js'
import { Connection, type ConnectionStatus } from './connection.js'
import { byId, el } from './dom.js'
import { Feed } from './feed.js'
import { People, matchUsers } from './people.js'
import { type Auth, forget, loadCursor, rememberedToken, rememberedUserId, renewalDelay, saveCursor, signIn, useToken } from './session.js'
import type { HistoryItem, Notification, ServerFrame, User } from './types.js'

const ui = {
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
  loadOlder: byId<HTMLButtonElement>('load-older'),
  peopleFilter: byId<HTMLInputElement>('people-filter'),
  announcer: byId('announcer')
}

const SIGN_IN_OPTIONS = 200

let users: User[] = []
let auth: Auth | null = null
let unread = 0
/** The newest position in the user's stream this page has seen: resume point for `since`. */
let lastCursor: string | null = null
let nextCursor: string | null = null
/** Between connecting with `since` and the `synced` frame, notifications are catch-up, not live. */
let catchingUp = false
let renewTimer: ReturnType<typeof setTimeout> | undefined
let renewing: Promise<boolean> | null = null
/** Bumped on every sign-in and sign-out, so an answer for the previous user is dropped. */
let signInCount = 0
let status: ConnectionStatus = { state: 'disconnected', retrying: false, error: null }

const feed = new Feed(byId('feed'), byId('feed-empty'))
const people = new People(byId('people'), byId('people-summary'), (followeeId, key) => authed((token) => follow(token, followeeId, key)))
const connection = new Connection({
  url () {
    const query = new URLSearchParams({ token: auth?.token ?? '' })
    if (lastCursor !== null) query.set('since', lastCursor)
    catchingUp = lastCursor !== null
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?${query}`
  },
  onFrame,
  onStatus (next) {
    status = next
    showConnection()
  },
  renewToken
})

function onFrame (frame: ServerFrame): void {
  switch (frame.type) {
    case 'ready':
      if (auth !== null && auth.user === null) {
        auth.user = frame.user
        showUser()
      }
      syncUnread(frame.unread)
      // Without a cursor there was no catch-up: what arrived since the last history load is only in history.
      if (!catchingUp) void loadHistory('refresh')
      break
    case 'notification':
      receive(frame.notification, frame.cursor)
      break
    case 'synced':
      catchingUp = false
      setCursor(frame.cursor)
      if (frame.reset === true) {
        // The server no longer knows our cursor: what we show may have a gap, so start over from history.
        feed.clear()
        void loadHistory('reset')
      }
      break
    case 'unread':
      syncUnread(frame.unread)
      break
  }
}

function receive (notification: Notification, cursor: string): void {
  const live = !catchingUp
  const latencyMs = live ? Date.now() - Date.parse(notification.createdAt) : null
  const added = feed.add({ notification, cursor, read: false, latencyMs }, 'live')
  setCursor(cursor)
  if (added && live) ui.announcer.textContent = notification.message
}

function setCursor (cursor: string): void {
  lastCursor = cursor
  if (auth?.user != null) saveCursor(auth.user.id, cursor)
}

function setUnread (count: number): void {
  unread = count
  ui.unread.textContent = count > 99 ? '99+' : String(count)
  ui.unread.dataset.count = String(count)
  ui.unread.hidden = count === 0
  ui.bell.setAttribute('aria-label', count === 0 ? 'No unread notifications' : `${count} unread notifications`)
  ui.markAllRead.disabled = count === 0
}

/** Applies the server's unread count, and fixes read highlights when another tab read some. */
function syncUnread (count: number): void {
  setUnread(count)
  if (count === 0) feed.markAllRead()
  else if (count < feed.unreadShown) void loadHistory('refresh')
}

function entry (item: HistoryItem): Parameters<Feed['add']>[0] {
  return { notification: item, cursor: item.cursor, read: item.read, latencyMs: null }
}

/**
 * `initial` and `reset` load the newest page (and set where "Load older" continues);
 * `older` loads the next page; `refresh` merges the newest page into what is shown.
 */
async function loadHistory (kind: 'initial' | 'reset' | 'refresh' | 'older'): Promise<void> {
  const before = kind === 'older' ? nextCursor : null
  const started = signInCount
  ui.loadOlder.disabled = true
  try {
    const page = await authed((token) => listNotifications(token, before))
    if (signInCount !== started) return
    for (const item of page.items) feed.add(entry(item), 'history')
    if (kind !== 'refresh') nextCursor = page.nextCursor
    if (kind !== 'older' && lastCursor === null && page.items[0] !== undefined) setCursor(page.items[0].cursor)
    if (kind !== 'older') setUnread(page.unread)
    showFeedError('')
  } catch (error) {
    showFeedError(`Could not load notifications: ${describeError(error)}`)
  } finally {
    ui.loadOlder.disabled = false
    ui.loadOlder.hidden = nextCursor === null
  }
}

/** Calls the API with the current token, renewing it once if the server says it expired. */
async function authed<T> (call: (token: string) => Promise<T>): Promise<T> {
  const current = auth
  if (current === null) throw new ApiError(401, 'UNAUTHORIZED', 'Not signed in')
  try {
    return await call(current.token)
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error
    if (!(await renewToken()) || auth === null) {
      if (auth === current) signOut(describeError(error))
      throw error
    }
    return await call(auth.token)
  }
}

function renewToken (): Promise<boolean> {
  const current = auth
  if (current === null || !current.renewable || current.user === null) return Promise.resolve(false)
  const userId = current.user.id
  renewing ??= signIn(userId).then((next) => {
    if (auth !== current) return false
    auth = next
    scheduleRenewal()
    return true
  }, (error: unknown) => {
    if (error instanceof ApiError && error.status === 404) {
      signOut(error.code === 'UNKNOWN_USER' ? 'Your user is no longer in the directory.' : describeError(error))
      return false
    }
    throw error
  }).finally(() => { renewing = null })
  return renewing
}

function scheduleRenewal (): void {
  clearTimeout(renewTimer)
  const delay = auth === null ? null : renewalDelay(auth)
  if (delay === null) return
  renewTimer = setTimeout(() => {
    renewToken().then((renewed) => { if (renewed) connection.restart() }, () => {
      renewTimer = setTimeout(scheduleRenewal, 5_000)
    })
  }, delay)
}

async function begin (next: Auth): Promise<void> {
  connection.stop()
  auth = next
  const started = ++signInCount
  lastCursor = null
  nextCursor = null
  feed.clear()
  setUnread(0)
  showUser()
  scheduleRenewal()
  await loadHistory('initial')
  if (signInCount !== started) return
  if (lastCursor === null && next.user !== null) lastCursor = loadCursor(next.user.id)
  connection.start()
}

function signOut (message = ''): void {
  connection.stop()
  clearTimeout(renewTimer)
  forget(auth?.user?.id ?? null)
  auth = null
  signInCount++
  lastCursor = null
  feed.clear()
  setUnread(0)
  showUser()
  ui.signInError.textContent = message
}

function showUser (): void {
  const signedIn = auth !== null
  ui.signIn.hidden = signedIn
  ui.app.hidden = !signedIn
  ui.account.hidden = !signedIn
  ui.userName.textContent = auth?.user?.name ?? ''
  document.title = auth?.user == null ? 'kafka-notify' : `${auth.user.name} · kafka-notify`
  people.update({ self: auth?.user?.id ?? null })
  showConnection()
}

function showConnection (): void {
  const [state, text] = connectionLabel()
  ui.connection.dataset.state = state
  ui.connectionText.textContent = text
}

function connectionLabel (): [state: string, text: string] {
  if (auth === null) return ['disconnected', 'Signed out']
  if (status.error !== null) return ['disconnected', status.error]
  if (!navigator.onLine) return ['offline', 'Offline']
  if (status.state === 'connected') return ['connected', 'Live']
  return status.retrying ? ['reconnecting', 'Reconnecting…'] : ['connecting', 'Connecting…']
}

function showFeedError (message: string): void {
  ui.feedError.textContent = message
  ui.feedError.hidden = message === ''
}

function showSignInError (error: unknown): void {
  // Without dev sign-in (AUTH_MODE=jwt) the sessions route does not exist at all.
  if (error instanceof ApiError && error.status === 404 && error.code !== 'UNKNOWN_USER') {
    ui.signInError.textContent = 'This server has no dev sign-in: sign in with a token.'
    ui.tokenDetails.open = true
  } else {
    ui.signInError.textContent = describeError(error)
  }
}

function renderSignInOptions (): void {
  const { matches, total } = matchUsers(users, ui.signInFilter.value, SIGN_IN_OPTIONS)
  const selected = ui.signInUser.value
  ui.signInUser.replaceChildren(...matches.map((user) => el('option', { value: user.id }, `${user.name} · #${user.id}`)))
  if (total > matches.length) {
    ui.signInUser.append(el('option', { disabled: '' }, `…and ${(total - matches.length).toLocaleString()} more: type to narrow down`))
  }
  if (matches.some((user) => user.id === selected)) ui.signInUser.value = selected
  ui.signInButton.disabled = matches.length === 0
}

ui.signInFilter.addEventListener('input', renderSignInOptions)
ui.peopleFilter.addEventListener('input', () => people.update({ query: ui.peopleFilter.value }))

ui.signInForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const userId = ui.signInUser.value
  if (userId === '') return
  ui.signInButton.disabled = true
  ui.signInError.textContent = ''
  signIn(userId).then(begin, showSignInError).finally(() => { ui.signInButton.disabled = false })
})

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const token = ui.tokenInput.value.trim()
  if (token === '') return
  ui.tokenInput.value = ''
  void begin(useToken(token))
})

ui.signOut.addEventListener('click', () => signOut())

ui.markAllRead.addEventListener('click', () => {
  const upTo = feed.newestCursor()
  if (upTo === null) return
  ui.markAllRead.disabled = true
  authed((token) => markRead(token, upTo)).then((result) => {
    feed.markReadUpTo(upTo)
    setUnread(result.unread)
  }, (error: unknown) => {
    showFeedError(describeError(error))
    ui.markAllRead.disabled = unread === 0
  })
})

ui.loadOlder.addEventListener('click', () => { void loadHistory('older') })

addEventListener('online', () => {
  showConnection()
  connection.retryNow()
})
addEventListener('offline', showConnection)
setInterval(() => feed.refreshTimes(), 30_000)

async function boot (): Promise<void> {
  const directory = listUsers().then((list) => {
    users = list
    renderSignInOptions()
    people.update({ users })
  }, (error: unknown) => {
    ui.signInError.textContent = `Could not load users: ${describeError(error)}`
  })

  const userId = rememberedUserId()
  const token = rememberedToken()
  if (userId !== null) {
    ui.connectionText.textContent = 'Signing in…'
    try {
      await begin(await signIn(userId))
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) forget(userId)
      showUser()
      showSignInError(error)
    }
  } else if (token !== null) {
    await begin(useToken(token))
  } else {
    showUser()
  }
  await directory
  document.body.dataset.ready = 'true'
}

void boot()

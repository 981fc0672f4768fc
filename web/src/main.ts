import { ApiError, GatewayApi } from '../../client/api.js'
import type { ConnectionStatus } from '../../client/connection.js'
import { NotifyClient } from '../../client/notify-client.js'
import { describeError } from './describe-error.js'
import { LiveFeed } from './live-feed.js'
import { type Auth, Session, signIn, useToken } from './session.js'
import { forget, loadPosition, rememberedToken, rememberedUserId, savePosition } from './storage.js'
import { View, statusLabel } from './view.js'

/**
 * Boot: builds the session, the feed client, the page's feed and the view, and wires them
 * together. All the page's state lives in the objects made here; this function only connects their
 * events.
 */
async function boot (): Promise<void> {
  const api = new GatewayApi(location.origin)
  let client: NotifyClient | null = null
  let feed: LiveFeed | null = null
  let status: ConnectionStatus = { state: 'disconnected', retrying: false, error: null, transport: 'websocket' }

  const session = new Session({
    api,
    onRenewed: () => client?.tokenRenewed(),
    onLost: (message) => signOut(message)
  })
  const view = new View({
    signIn: async (userId) => { await begin(await signIn(api, userId)) },
    useToken: (token) => { void begin(useToken(token)) },
    signOut: () => signOut(),
    markAllRead: async () => { await feed?.markAllRead() },
    clearAll: async () => { await feed?.clearAll() },
    act: async (action, groupId, actor) => { await feed?.act(action, groupId, actor, (actorId) => view.preferences.mute(actorId)) },
    markSeen: async () => await client?.markSeen(),
    showInbox: (inbox) => feed?.show(inbox),
    saveMuted: async (muted) => {
      if (client !== null) view.showMuted(await client.setPreferences(muted))
    },
    loadOlder: () => feed?.loadOlder(),
    follow: (followeeId, key) => session.authed((token) => api.follow(token, followeeId, key)),
    network (online) {
      showStatus()
      if (online) client?.retryNow()
    }
  })

  function showUser (): void {
    view.showUser(session.auth !== null, session.user)
    showStatus()
  }

  function showStatus (): void {
    view.showStatus(statusLabel(session.auth !== null, status, navigator.onLine), status.transport)
  }

  /** Ends the signed-in user's feed, if any: its client stops, late answers are ignored. */
  function endFeed (): void {
    client?.stop()
    feed?.close()
    client = null
    feed = null
  }

  async function begin (auth: Auth): Promise<void> {
    endFeed()
    session.begin(auth)
    const current = client = new NotifyClient({
      baseUrl: location.origin,
      token: () => session.token,
      renewToken: () => session.renew()
    })
    feed = new LiveFeed(view, current)
    feed.show(view.tabs.view)
    current.on('status', (next) => {
      status = next
      showStatus()
    })
    current.on('ready', ({ user }) => { if (session.nameUser(user)) showUser() })
    current.on('position', (position) => {
      const user = session.user
      if (user !== null) savePosition(user.id, position)
    })
    showUser()
    await feed.start()
    current.resumeFrom(auth.user === null ? null : loadPosition(auth.user.id))
    if (client === current) current.start()
  }

  function signOut (message = ''): void {
    endFeed()
    session.end()
    view.list.clear()
    view.showUnread(0)
    view.showUnseen(0)
    showUser()
    view.showSignInMessage(message)
  }

  setInterval(() => feed?.refreshTimes(), 30_000)

  const directory = api.listUsers().then((users) => view.showUsers(users), (error: unknown) => {
    view.showSignInMessage(`Could not load users: ${describeError(error)}`)
  })

  const userId = rememberedUserId()
  const token = rememberedToken()
  if (userId !== null) {
    view.showSigningIn()
    try {
      await begin(await signIn(api, userId))
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) forget(userId)
      showUser()
      view.showSignInError(error)
    }
  } else if (token !== null) {
    await begin(useToken(token))
  } else {
    showUser()
  }
  await directory
  view.markReady()
}

void boot()

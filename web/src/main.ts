import { ApiError, describeError, follow, listUsers } from './api.js'
import { LiveSocket, type SocketStatus } from './live-socket.js'
import { LiveFeed } from './live-feed.js'
import { type Auth, Session, signIn, useToken } from './session.js'
import { forget, loadPosition, rememberedToken, rememberedUserId, savePosition } from './storage.js'
import { View, statusLabel } from './view.js'

/**
 * Boot: builds the session, the socket, the feed and the view, and wires them together. All the
 * page's state lives in the objects made here; this function only connects their events.
 */
async function boot (): Promise<void> {
  let feed: LiveFeed | null = null
  let status: SocketStatus = { state: 'disconnected', retrying: false, error: null }

  const session = new Session({
    onRenewed: () => socket.restart(),
    onLost: (message) => signOut(message)
  })
  const socket = new LiveSocket({
    endpoint: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    dial: () => ({ token: session.token, since: feed?.since ?? null }),
    onFrame (frame, dial) {
      if (frame.type === 'ready' && session.nameUser(frame.user)) showUser()
      feed?.frame(frame, dial)
    },
    onStatus (next) {
      status = next
      showStatus()
    },
    renewToken: () => session.renew()
  })
  const view = new View({
    signIn: async (userId) => { await begin(await signIn(userId)) },
    useToken: (token) => { void begin(useToken(token)) },
    signOut: () => signOut(),
    markAllRead: async () => { await feed?.markAllRead() },
    loadOlder: () => feed?.loadOlder(),
    follow: (followeeId, key) => session.authed((token) => follow(token, followeeId, key)),
    network (online) {
      showStatus()
      if (online) socket.retryNow()
    }
  })

  function showUser (): void {
    view.showUser(session.auth !== null, session.user)
    showStatus()
  }

  function showStatus (): void {
    view.showStatus(statusLabel(session.auth !== null, status, navigator.onLine))
  }

  async function begin (auth: Auth): Promise<void> {
    socket.stop()
    feed?.close()
    session.begin(auth)
    const current = feed = new LiveFeed({
      view,
      authed: (call) => session.authed(call),
      resync: () => socket.resync(),
      onPosition (position) {
        const user = session.user
        if (user !== null) savePosition(user.id, position)
      }
    })
    showUser()
    await current.start(auth.user === null ? null : loadPosition(auth.user.id))
    if (feed === current) socket.start()
  }

  function signOut (message = ''): void {
    socket.stop()
    feed?.close()
    feed = null
    session.end()
    view.list.clear()
    view.showUnread(0)
    showUser()
    view.showSignInMessage(message)
  }

  setInterval(() => feed?.refreshTimes(), 30_000)

  const directory = listUsers().then((users) => view.showUsers(users), (error: unknown) => {
    view.showSignInMessage(`Could not load users: ${describeError(error)}`)
  })

  const userId = rememberedUserId()
  const token = rememberedToken()
  if (userId !== null) {
    view.showSigningIn()
    try {
      await begin(await signIn(userId))
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

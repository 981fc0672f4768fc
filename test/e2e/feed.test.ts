import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Browser, Page, WebSocketRoute } from 'playwright-core'
import { CloseCode } from '../../server/hub/close-codes.js'
import { decodeCursor } from '../../server/feed/cursor.js'
import { encodeNotification } from '../../server/kafka/record.js'
import { followNotification } from '../../server/notification.js'
import { follow as followOverHttp, signIn } from '../helpers/clients.js'
import { buildPage, launchChromium } from '../helpers/chromium.js'
import { eventually } from '../helpers/eventually.js'
import { anotherTab, connected, feedItem, signedInPage } from '../helpers/feed-page.js'
import { startSharedServices, waitReady } from '../helpers/feed-checks.js'
import { startGateway } from '../helpers/gateway.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { rawProducer } from '../helpers/kafka.js'

/** Clicks Follow next to `userId` and waits for the button to confirm it. */
async function follow (page: Page, userId: string): Promise<void> {
  await page.click(`[data-testid="follow"][data-user-id="${userId}"]`)
  await page.locator(`[data-testid="follow"][data-user-id="${userId}"]`, { hasText: 'Sent' }).waitFor()
}

async function unreadBadge (page: Page, count: number): Promise<string | null> {
  const badge = page.locator(`[data-testid="unread-badge"][data-count="${count}"]`)
  await badge.waitFor({ state: 'attached' })
  return count === 0 ? null : await badge.textContent()
}

/**
 * Emma's page, whose first socket loses the frame with `message` in it, as a dropped pub/sub
 * message would; `sockets`: the URL of every socket the page opened.
 */
async function pageLosing (t: Test, browser: Browser, url: string, message: string): Promise<{ page: Page, sockets: string[] }> {
  const sockets: string[] = []
  const page = await signedInPage(t, browser, url, '1', {}, async (page) => {
    await page.routeWebSocket(/\/ws(\?|$)/, (socket) => {
      sockets.push(socket.url())
      const first = sockets.length === 1
      const server = socket.connectToServer()
      server.onMessage((frame) => {
        if (first && typeof frame === 'string' && frame.includes(`"${message}"`)) return
        socket.send(frame)
      })
    })
  })
  return { page, sockets }
}

const FOLLOWED_BY_BRUNO = 'Bruno started following you.'
const EMMA = { id: '1', name: 'Emma' }

/** Emma's stored history, over the API. */
async function historyOf (url: string, userId: string): Promise<{ items: Array<{ message: string, read: boolean }>, unread: number }> {
  const token = await signIn(url, userId)
  const response = await fetch(`${url}/api/notifications`, { headers: { authorization: `Bearer ${token}` } })
  return await response.json() as { items: Array<{ message: string, read: boolean }>, unread: number }
}

/** Each follow its own row (no grouping): these tests are about delivery, test/e2e/inbox.test.ts about groups. */
const UNGROUPED = { GROUP_WINDOW_MS: '0' }

const browser = await launchChromium(t)
if (browser !== undefined) {
  buildPage()

  t.test('a follow shows up live on the followee\'s page only', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    const emma = await signedInPage(t, browser, url, '1')
    const bruno = await signedInPage(t, browser, url, '2')
    t.equal(await emma.textContent('[data-testid="user-name"]'), 'Emma')
    t.equal(await bruno.locator('[data-testid="follow"][data-user-id="2"]').count(), 0, 'no follow button for yourself')

    await follow(bruno, '1')
    const item = feedItem(emma, FOLLOWED_BY_BRUNO)
    await item.waitFor()
    t.equal(await unreadBadge(emma, 1), '1', 'unread badge counts it')
    t.equal(await item.getAttribute('data-read'), 'false', 'highlighted as unread')
    t.match(await item.locator('[data-testid="latency"]').textContent(), /^arrived in \d+ ms$/)
    t.equal(await bruno.locator('[data-testid="feed-item"]').count(), 0, 'the follower gets nothing')
    t.equal(await bruno.locator('[data-testid="unread-badge"]').getAttribute('data-count'), '0')

    const phone = await signedInPage(t, browser, url, '1', { viewport: { width: 375, height: 740 } })
    await feedItem(phone, FOLLOWED_BY_BRUNO).waitFor()
    const screenshot = join(mkdtempSync(join(tmpdir(), 'kafka-notify-e2e-')), 'feed-375.png')
    await phone.screenshot({ path: screenshot, fullPage: true })
    t.comment(`phone-width screenshot: ${screenshot}`)
    t.equal(await phone.evaluate('document.documentElement.scrollWidth <= innerWidth'), true, 'no horizontal overflow at 375 px')
  })

  // A token in the socket's URL ends up in proxy access logs and browser history.
  t.test('the page opens its WebSocket with the token as a subprotocol: the URL never carries the token', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    const sockets: string[] = []
    const handshakes: string[] = []
    const tokens: string[] = []
    const emma = await signedInPage(t, browser, url, '1', {}, async (page) => {
      page.on('websocket', (socket) => sockets.push(socket.url()))
      page.on('response', async (response) => {
        if (new URL(response.url()).pathname === '/api/sessions' && response.ok()) tokens.push((await response.json() as { token: string }).token)
      })
      // The handshake's headers, as Chromium sent them (Playwright shows only the URL).
      const cdp = await page.context().newCDPSession(page)
      await cdp.send('Network.enable')
      cdp.on('Network.webSocketWillSendHandshakeRequest', ({ request }) => {
        const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]))
        handshakes.push(String(headers['sec-websocket-protocol'] ?? ''))
      })
    })
    const bruno = await signedInPage(t, browser, url, '2')
    await follow(bruno, '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    t.ok(tokens.length > 0 && sockets.length > 0, `the page signed in and opened its socket (${sockets.length})`)
    for (const socket of sockets) {
      const query = new URL(socket).searchParams
      t.same([...query.keys()].filter((name) => name !== 'since'), [], 'no token or ticket parameter')
      t.notOk(tokens.some((token) => socket.includes(token)), 'nor the token anywhere in the URL')
    }
    t.equal(handshakes.length, sockets.length, 'every handshake seen')
    t.ok(handshakes.every((offered) => tokens.some((token) => offered === `kafka-notify, bearer.${token}`)), 'each offered kafka-notify and its token as subprotocols')
  })

  // Two gateways on one PostgreSQL inbox and one Redis fan-out are one system for the page too, as
  // `npm run cluster` shows it: Emma on one, Bruno on the other.
  t.test('two gateways on PostgreSQL and Redis: a follow clicked on one shows up live on the other, and a read there clears the badge here', async (t) => {
    const shared = await startSharedServices(t)
    if (shared === undefined) return
    const a = await startGateway(t, { env: { ...shared.env, ...UNGROUPED } })
    const b = await startGateway(t, { env: { ...shared.env, ...UNGROUPED } })
    for (const gateway of [a, b]) await waitReady(gateway.url)
    const emmaOnA = await signedInPage(t, browser, a.url, '1')
    const emmaOnB = await signedInPage(t, browser, b.url, '1')
    const brunoOnB = await signedInPage(t, browser, b.url, '2')

    await follow(brunoOnB, '1')
    await feedItem(emmaOnA, FOLLOWED_BY_BRUNO).waitFor()
    await feedItem(emmaOnB, FOLLOWED_BY_BRUNO).waitFor()
    t.equal(await unreadBadge(emmaOnA, 1), '1', 'the tab on the other gateway counts it')

    await emmaOnB.click('[data-testid="mark-all-read"]')
    await unreadBadge(emmaOnA, 0)
    t.equal(await feedItem(emmaOnA, FOLLOWED_BY_BRUNO).getAttribute('data-read'), 'true', 'read on B, shown read on A')

    await emmaOnA.reload()
    await connected(emmaOnA)
    t.equal(await emmaOnA.locator('[data-testid="feed-item"]').count(), 1, 'one shared history, without duplicates')
  })

  t.test('missed notifications wait in the inbox, and reading them clears every tab', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    const emma = await signedInPage(t, browser, url, '1')
    const bruno = await signedInPage(t, browser, url, '2')
    await emma.context().close()

    await follow(bruno, '1')
    const back = await signedInPage(t, browser, url, '1')
    await feedItem(back, FOLLOWED_BY_BRUNO).waitFor()
    t.equal(await unreadBadge(back, 1), '1', 'the missed follow is unread')
    t.equal(await back.locator('[data-testid="feed-item"]').count(), 1)

    const tab = await anotherTab(t, back)
    t.equal(await tab.textContent('[data-testid="user-name"]'), 'Emma', 'a new tab signs in as the last user')
    await feedItem(tab, FOLLOWED_BY_BRUNO).waitFor()
    await unreadBadge(tab, 1)

    await back.click('[data-testid="mark-all-read"]')
    await unreadBadge(tab, 0)
    t.equal(await tab.locator('[data-testid="unread-badge"]').isVisible(), false, 'badge hidden in the other tab')
    t.equal(await feedItem(tab, FOLLOWED_BY_BRUNO).getAttribute('data-read'), 'true', 'item no longer highlighted in the other tab')
    await unreadBadge(back, 0)

    await follow(bruno, '1')
    await tab.waitForFunction('document.querySelectorAll(\'[data-testid="feed-item"]\').length === 2')
    await back.waitForFunction('document.querySelectorAll(\'[data-testid="feed-item"]\').length === 2')
    t.equal(await unreadBadge(back, 1), '1', 'every tab gets the live follow')

    await tab.reload()
    await connected(tab)
    t.equal(await tab.textContent('[data-testid="user-name"]'), 'Emma', 'a reload keeps the user')
    await unreadBadge(tab, 1)
    t.equal(await tab.locator('[data-testid="feed-item"]').count(), 2, 'history after reload, without duplicates')
    t.equal(await tab.locator('[data-testid="feed-item"][data-read="false"]').count(), 1)
  })

  t.test('a dropped connection resumes from its cursor: nothing missed, nothing twice', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    // Emma's sockets pass through the test, which can drop them as a restarting gateway would.
    const links: Array<{ page: WebSocketRoute, server: WebSocketRoute }> = []
    const emma = await signedInPage(t, browser, url, '1', {}, async (page) => {
      await page.routeWebSocket(/\/ws(\?|$)/, (socket) => { links.push({ page: socket, server: socket.connectToServer() }) })
    })
    const bruno = await signedInPage(t, browser, url, '2')
    await follow(bruno, '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()

    // Offline, the page waits for the browser's `online` event instead of retrying.
    await emma.context().setOffline(true)
    for (const { page, server } of links) {
      await server.close()
      await page.close({ code: CloseCode.GOING_AWAY, reason: 'restarting' })
    }
    await emma.waitForSelector('[data-testid="connection"][data-state="offline"]')
    await follow(bruno, '1')
    // Accepted is not yet stored: one stored after the page is back would come live, not by catch-up.
    const emmaToken = await signIn(url, '1')
    await eventually('the follow made while offline is stored', async () => {
      const page = await (await fetch(`${url}/api/notifications`, { headers: { authorization: `Bearer ${emmaToken}` } })).json() as { items: unknown[] }
      return page.items.length
    }, (stored) => stored === 2)

    await emma.context().setOffline(false)
    await connected(emma)
    await emma.waitForFunction('document.querySelectorAll(\'[data-testid="feed-item"]\').length === 2')
    t.equal(await unreadBadge(emma, 2), '2')
    const ids = await emma.locator('[data-testid="feed-item"]').evaluateAll((items) => items.map((item) => item.getAttribute('data-id')))
    t.equal(new Set(ids).size, 2, 'distinct notifications')
    t.equal(await emma.locator('[data-testid="feed-item"]').first().locator('[data-testid="latency"]').count(), 0,
      'a caught-up notification does not claim a live latency')
  })

  t.test('the page renews its token before expiry without dropping the feed', async (t) => {
    const { url } = await startGateway(t, { env: { SESSION_TTL_SECONDS: '10', ...UNGROUPED } })
    const emma = await signedInPage(t, browser, url, '1')
    await emma.evaluate(`{
      const status = document.querySelector('[data-testid="connection"]')
      window.states = []
      new MutationObserver(() => window.states.push(status.dataset.state)).observe(status, { attributeFilter: ['data-state'] })
    }`)
    // Time has to pass here: the first token expires 10 s after sign-in (the server's minimum TTL).
    await emma.waitForTimeout(11_000)
    const bruno = await signedInPage(t, browser, url, '2')
    await follow(bruno, '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    t.same((await emma.evaluate('window.states') as string[]).filter((state) => state !== 'connected'), [],
      'stayed connected past the first token\'s expiry')
  })

  t.test('a follow retried after a 503 sends the same Idempotency-Key and is stored once', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    const emma = await signedInPage(t, browser, url, '1')
    const bruno = await signedInPage(t, browser, url, '2')
    const keys: string[] = []
    await bruno.route('**/api/follows', async (route) => {
      keys.push(route.request().headers()['idempotency-key'] ?? '')
      if (keys.length > 1) return await route.continue()
      // The gateway does produce this one: a 503 says only that the outcome is unknown.
      await route.fetch()
      await route.fulfill({
        status: 503,
        headers: { 'retry-after': '1' },
        contentType: 'application/json',
        body: JSON.stringify({ statusCode: 503, error: 'Service Unavailable', code: 'KAFKA_UNAVAILABLE', message: 'Kafka did not acknowledge the follow' })
      })
    })

    await bruno.click('[data-testid="follow"][data-user-id="1"]')
    await bruno.locator('[data-testid="follow-status"][data-user-id="1"]', { hasText: 'Service unavailable, try again in 1 s' }).waitFor()
    const replay = bruno.waitForResponse((response) => response.url().endsWith('/api/follows') && response.status() === 202)
    await follow(bruno, '1')
    t.equal(keys.length, 2, 'two POSTs')
    t.match(keys[0], /^[0-9a-f-]{36}$/, 'the first carries a key')
    t.equal(keys[1], keys[0], 'the retry carries the same key')
    t.equal(await (await replay).headerValue('idempotent-replayed'), 'true', 'the gateway answered the retry from the first attempt')

    // Every notification for Emma is in one partition, in order: once Rick's arrives, a second Bruno would have too.
    await followOverHttp(url, await signIn(url, '3'), '1')
    await feedItem(emma, 'Rick started following you.').waitFor()
    t.equal(await feedItem(emma, FOLLOWED_BY_BRUNO).count(), 1, 'delivered once')
    const history = await historyOf(url, '1')
    t.equal(history.items.filter((item) => item.message === FOLLOWED_BY_BRUNO).length, 1, 'stored once')
  })

  t.test('mark all read reaches the newest cursor even when its item is not on top', async (t) => {
    const { url, config } = await startGateway(t, { env: UNGROUPED })
    const producer = await rawProducer(t)
    const produce = async (follower: { id: string, name: string }, createdAt: Date): Promise<void> => {
      const notification = { ...followNotification(follower, EMMA), createdAt: createdAt.toISOString() }
      await producer.send({ topic: config.kafka.topic, acks: -1, messages: [encodeNotification(notification)] })
    }
    // Rick's follow goes first (older cursor) with the newest time; Lena's lands later (newest
    // cursor) claiming an hour ago, like a late-landing follow or a producer with a skewed clock.
    await produce({ id: '3', name: 'Rick' }, new Date())
    const emma = await signedInPage(t, browser, url, '1')
    await feedItem(emma, 'Rick started following you.').waitFor()
    await produce({ id: '4', name: 'Lena' }, new Date(Date.now() - 3_600_000))
    await feedItem(emma, 'Lena started following you.').waitFor()
    t.same(await emma.locator('[data-testid="feed-item"] .message').allTextContents(),
      ['Rick started following you.', 'Lena started following you.'], 'sorted by time: the newest cursor is at the bottom')
    t.equal(await unreadBadge(emma, 2), '2')

    await emma.click('[data-testid="mark-all-read"]')
    await unreadBadge(emma, 0)
    t.equal(await emma.locator('[data-testid="feed-item"][data-read="false"]').count(), 0, 'no item left highlighted')

    await emma.reload()
    await connected(emma)
    await emma.waitForFunction('document.querySelectorAll(\'[data-testid="feed-item"]\').length === 2')
    t.equal(await emma.locator('[data-testid="unread-badge"]').getAttribute('data-count'), '0', 'still 0 after a reload')
    t.equal(await emma.locator('[data-testid="feed-item"][data-read="false"]').count(), 0)
    t.equal((await historyOf(url, '1')).unread, 0, 'read on the server')
  })

  t.test('a notification frame that skips a seq makes the page resync: no hole is shown', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    const { page: emma, sockets } = await pageLosing(t, browser, url, 'Rick started following you.')
    await emma.evaluate(`{
      window.feeds = []
      const feed = document.querySelector('[data-testid="feed"]')
      new MutationObserver(() => window.feeds.push(Array.from(feed.querySelectorAll('.message'), (node) => node.textContent)))
        .observe(feed, { childList: true })
    }`)

    const follower = async (userId: string): Promise<string> => await signIn(url, userId)
    const [bruno, rick, lena] = await Promise.all([follower('2'), follower('3'), follower('4')])
    await followOverHttp(url, bruno, '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    await followOverHttp(url, rick, '1')
    await followOverHttp(url, lena, '1')

    await feedItem(emma, 'Lena started following you.').waitFor()
    await feedItem(emma, 'Rick started following you.').waitFor()
    t.equal(await emma.locator('[data-testid="feed-item"]').count(), 3)
    t.equal(sockets.length, 2, 'reconnected once')
    // Bruno's seq: the page's seen mark (a state change, its rev in the cursor) may have moved the cursor since.
    const since = decodeCursor(new URL(sockets[1] ?? '').searchParams.get('since') ?? '')
    t.equal(since.seq, Number(await feedItem(emma, FOLLOWED_BY_BRUNO).getAttribute('data-seq')), 'from the last position before the hole')
    const feeds = await emma.evaluate('window.feeds') as string[][]
    t.notOk(feeds.some((feed) => feed.includes('Lena started following you.') && !feed.includes('Rick started following you.')),
      'Lena\'s follow was never shown without Rick\'s before it')
    await connected(emma)
  })

  t.test('mark all read answered 409 STALE_CURSOR reloads history instead of showing an error', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    const emma = await signedInPage(t, browser, url, '1')
    await followOverHttp(url, await signIn(url, '2'), '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    await emma.route('**/api/notifications/read', async (route) => await route.fulfill({
      status: 409,
      contentType: 'application/json',
      body: JSON.stringify({ statusCode: 409, error: 'Conflict', code: 'STALE_CURSOR', message: 'body/upTo is a cursor from another inbox epoch' })
    }))
    const reload = emma.waitForRequest((request) => request.method() === 'GET' && new URL(request.url()).pathname === '/api/notifications')
    await emma.click('[data-testid="mark-all-read"]')
    await reload
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    await emma.locator('[data-testid="mark-all-read"]:enabled').waitFor()
    t.equal(await emma.locator('[data-testid="feed-error"]').isVisible(), false, 'no error shown')
    t.equal(await unreadBadge(emma, 1), '1', 'the unread count from the reloaded history')
  })

  // Counts from two publishers (the consuming gateway, the one that took the
  // read mark) may cross on the way; an older one must not overwrite a newer one.
  t.test('a notification frame that arrives after the read mark that read it does not bring its old unread count back', async (t) => {
    const { url } = await startGateway(t, { env: UNGROUPED })
    let holding = false
    const held: string[] = []
    let release: () => void = () => {}
    let heldOne: () => void = () => {}
    let passedUnread: () => void = () => {}
    const frameHeld = new Promise<void>((resolve) => { heldOne = resolve })
    const unreadPassed = new Promise<void>((resolve) => { passedUnread = resolve })
    const emma = await signedInPage(t, browser, url, '1', {}, async (page) => {
      await page.routeWebSocket(/\/ws(\?|$)/, (socket) => {
        const server = socket.connectToServer()
        release = () => { for (const message of held.splice(0)) socket.send(message) }
        server.onMessage((message) => {
          if (typeof message !== 'string') return socket.send(message)
          if (holding && message.startsWith('{"type":"notification"')) {
            held.push(message)
            heldOne()
            return
          }
          socket.send(message)
          if (message.startsWith('{"type":"unread"')) passedUnread()
        })
      })
    })
    holding = true
    await followOverHttp(url, await signIn(url, '2'), '1')
    await frameHeld
    const { cursor } = JSON.parse(held[0]!) as { cursor: string }
    const read = await fetch(`${url}/api/notifications/read`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signIn(url, '1')}` },
      body: JSON.stringify({ upTo: cursor })
    })
    t.match(await read.json(), { unread: 0, rev: 1 }, 'read on the server: the answer names the read state\'s rev')
    await unreadPassed

    holding = false
    release() // after the unread frame, on the same socket: the page reads them in this order
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    t.equal(await emma.locator('[data-testid="unread-badge"]').getAttribute('data-count'), '0', 'the late frame\'s count (1, from before the read) is not applied')
    await feedItem(emma, FOLLOWED_BY_BRUNO).and(emma.locator('[data-read="true"]')).waitFor()
    t.pass('and the item shows read, as the server has it')
  })

  // A lost last frame was noticed only when a later one arrived.
  t.test('the last notification frame is lost on the way: the next ping frame reveals it and the page fetches it, with no further notification', async (t) => {
    const { url } = await startGateway(t, { env: { WS_HEARTBEAT_MS: '1000', ...UNGROUPED } })
    const { page: emma, sockets } = await pageLosing(t, browser, url, 'Rick started following you.')
    await followOverHttp(url, await signIn(url, '2'), '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()
    await followOverHttp(url, await signIn(url, '3'), '1')
    await feedItem(emma, 'Rick started following you.').waitFor()
    t.equal(sockets.length, 2, 'the page reconnected once')
    // Bruno's position: the page's seen mark (a state change) may have moved the cursor past his own, never the seq.
    const since = decodeCursor(new URL(sockets[1] ?? '').searchParams.get('since') ?? '')
    t.equal(since.seq, Number(await feedItem(emma, FOLLOWED_BY_BRUNO).getAttribute('data-seq')), 'from Bruno\'s position')
    t.equal(await unreadBadge(emma, 2), '2')
  })

  // Browsers cannot see protocol pings, so a connection that went silent (a
  // NAT or proxy forgot it) looked open for ever.
  t.test('the connection goes silent without closing: the page notices by the missing pings and resumes from its cursor', async (t) => {
    const gateway = await startGateway(t, { env: { WS_HEARTBEAT_MS: '1000', ...UNGROUPED } })
    const address = new URL(gateway.url)
    const proxy = await startTcpProxy(t, { host: address.hostname, port: Number(address.port) })
    const emma = await signedInPage(t, browser, `http://127.0.0.1:${proxy.port}`, '1')
    const bruno = await signIn(gateway.url, '2')
    await followOverHttp(gateway.url, bruno, '1')
    await feedItem(emma, FOLLOWED_BY_BRUNO).waitFor()

    proxy.silence()
    const silentAt = Date.now()
    await followOverHttp(gateway.url, bruno, '1')
    await emma.waitForFunction('document.querySelectorAll(\'[data-testid="feed-item"]\').length === 2')
    t.comment(`the page showed the second follow ${Date.now() - silentAt} ms after its connection went silent`)
    await connected(emma)
    t.equal(await unreadBadge(emma, 2), '2')
  })
}

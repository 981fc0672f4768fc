import t, { type Test } from 'tap'
import type { Browser, Page } from 'playwright-core'
import { CloseCode } from '../../server/hub/close-codes.js'
import { launchChromium } from '../helpers/chromium.js'
import { follow, signIn } from '../helpers/clients.js'
import { waitReady } from '../helpers/feed-checks.js'
import { startGateway } from '../helpers/gateway.js'

/** What the page's EventSource saw: each event's type, `lastEventId` and data, and each `open`/`error`. */
interface Seen { type: string, lastEventId: string, data: unknown }

/**
 * Opens `path` with a plain EventSource in the page (as `window.source`), recording everything it
 * dispatches in `window.seen`; nothing reconnects but EventSource itself. Browser code, as text:
 * the tests' compiler has no DOM types.
 */
async function openSource (page: Page, path: string): Promise<void> {
  await page.evaluate(`(() => {
    window.seen = []
    const source = new EventSource(${JSON.stringify(path)})
    window.source = source
    for (const type of ['ready', 'notification', 'synced', 'unread', 'ping', 'close']) {
      source.addEventListener(type, (event) => window.seen.push({ type, lastEventId: event.lastEventId, data: JSON.parse(event.data) }))
    }
    source.addEventListener('open', () => window.seen.push({ type: 'open', lastEventId: '', data: null }))
    source.addEventListener('error', () => window.seen.push({ type: 'error', lastEventId: '', data: source.readyState }))
  })()`)
}

async function seenOf (page: Page, count: number, type: string): Promise<Seen[]> {
  await page.waitForFunction(`window.seen.filter((seen) => seen.type === ${JSON.stringify(type)}).length >= ${count}`)
  return await page.evaluate('window.seen') as Seen[]
}

/** A page of its own (a fresh context) on the gateway's origin, for scripts that open /sse from it. */
async function pageAt (t: Test, browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(20_000)
  await page.goto(url)
  return page
}

async function followed (url: string, token: string, followeeId: string): Promise<string> {
  const response = await follow(url, token, followeeId)
  if (response.status !== 202) throw new Error(`follow answered ${response.status}`)
  return ((await response.json()) as { notification: { id: string } }).notification.id
}

const browser = await launchChromium(t)
if (browser !== undefined) {
  // docs/protocol.md's claims about browsers, checked in one: the ids of /sse are what EventSource
  // sends back as Last-Event-ID when it reconnects on its own, and the gateway resumes from it.
  t.test('Chromium\'s EventSource reads the events, and after the stream ends reconnects by itself with Last-Event-ID and gets what it missed', async (t) => {
    const { url, services } = await startGateway(t)
    await waitReady(url)
    const [emma, bruno] = await Promise.all([signIn(url, '1'), signIn(url, '2')])
    const page = await pageAt(t, browser, url)
    // ?token= because EventSource reconnects with the URL it was opened with (a ticket is spent).
    await openSource(page, `/sse?token=${bruno}`)
    await seenOf(page, 1, 'ready')
    const first = await followed(url, emma, '2')
    const [notification] = (await seenOf(page, 1, 'notification')).filter(({ type }) => type === 'notification')
    t.match(notification, { lastEventId: /^[0-9a-f]{8}\.1\.0$/, data: { type: 'notification', notification: { id: first }, seq: 1 } }, 'the cursor is the event\'s lastEventId')

    services.hub.disconnectAll(CloseCode.GOING_AWAY, 'server shutting down')
    const missed = [await followed(url, emma, '2'), await followed(url, emma, '2')]
    await seenOf(page, 3, 'notification')
    // synced follows the replayed notifications, not necessarily in the same read.
    await page.waitForFunction('window.seen.slice(window.seen.findIndex((seen) => seen.type === "close")).some((seen) => seen.type === "synced")')
    const seen = await page.evaluate('window.seen') as Seen[]
    const close = seen.findIndex(({ type }) => type === 'close')
    t.match(seen[close], { data: { type: 'close', code: 1001, reason: 'server shutting down' } }, 'the close event came')
    const after = seen.slice(close + 1)
    t.match(after.find(({ type }) => type === 'ready'), { lastEventId: notification!.lastEventId }, 'the new stream resumed from the last id: Chromium sent it as Last-Event-ID')
    t.ok(after.some(({ type }) => type === 'synced'), 'a resumed stream says synced')
    t.same(after.filter(({ type }) => type === 'notification').map(({ data }) => (data as { notification: { id: string } }).notification.id), missed, 'what it missed, once each, in order')
    t.equal(seen.filter(({ type }) => type === 'open').length, 2, 'one reconnect, by EventSource itself')
  })

  t.test('Chromium\'s EventSource opened with a ticket gets a 401 on its own reconnect and stops, as docs/protocol.md warns', async (t) => {
    const { url, services } = await startGateway(t)
    const bruno = await signIn(url, '2')
    const { ticket } = await (await fetch(`${url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${bruno}` } })).json() as { ticket: string }
    const page = await pageAt(t, browser, url)
    await openSource(page, `/sse?ticket=${ticket}`)
    await seenOf(page, 1, 'ready')
    services.hub.disconnectAll(CloseCode.GOING_AWAY, 'server shutting down')
    await page.waitForFunction('window.source.readyState === EventSource.CLOSED')
    const seen = await page.evaluate('window.seen') as Seen[]
    t.same(seen.filter(({ type }) => type === 'open').length, 1, 'no second stream')
    t.same(seen.at(-1), { type: 'error', lastEventId: '', data: 2 }, 'an error, then CLOSED: the client reconnects itself, with a new ticket')
  })
}

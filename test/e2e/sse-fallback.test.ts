import t from 'tap'
import type { Page } from 'playwright-core'
import { CloseCode } from '../../server/hub/close-codes.js'
import { follow, signIn } from '../helpers/clients.js'
import { buildPage, launchChromium } from '../helpers/chromium.js'
import { connected, signedInPage } from '../helpers/feed-page.js'
import { startGateway } from '../helpers/gateway.js'

/** A follow of Emma (user 1) by `followerId`, over the API. */
async function followEmma (url: string, followerId: string): Promise<void> {
  const response = await follow(url, await signIn(url, followerId), '1')
  if (response.status !== 202) throw new Error(`follow answered ${response.status}`)
}

async function itemsShown (page: Page, count: number): Promise<void> {
  await page.waitForFunction(`document.querySelectorAll('[data-testid="feed-item"]').length === ${count}`)
}

const browser = await launchChromium(t)
if (browser !== undefined) {
  buildPage()

  for (const width of [1280, 390]) {
    t.test(`at ${width} px: with WebSockets blocked, the page falls back to SSE on its own, gets the feed live, and resumes after a drop`, async (t) => {
      const { url, services } = await startGateway(t, { env: { GROUP_WINDOW_MS: '0' } }) // each follow its own row
      const webSockets: string[] = []
      const streams: string[] = []
      /** Holds the page's stream requests while set, as a network that is slow to reconnect. */
      let hold: Promise<void> | null = null
      let held: () => void = () => {}
      const page = await signedInPage(t, browser, url, '1', { viewport: { width, height: 800 } }, async (page) => {
        // As a proxy that breaks WebSockets: every upgrade is answered, then closed before a frame passes.
        await page.routeWebSocket(/\/ws(\?|$)/, (socket) => {
          webSockets.push(socket.url())
          socket.close()
        })
        await page.route(/\/sse(\?|$)/, async (route) => {
          streams.push(route.request().url())
          const wait = hold
          held()
          if (wait !== null) await wait
          await route.continue()
        })
      })
      t.equal(await page.getAttribute('[data-testid="connection"]', 'data-transport'), 'sse', 'connected over SSE')
      t.ok(webSockets.length >= 2, `the WebSocket was tried first (${webSockets.length} attempts)`)
      t.equal(await page.textContent('#connection-text'), 'Live')
      t.notMatch(streams[0], /token|ticket/, 'the token is not in the stream\'s URL')

      await followEmma(url, '2')
      await itemsShown(page, 1)
      t.equal(await page.getAttribute('[data-testid="unread-badge"]', 'data-count'), '1', 'live, with its count')

      // The stream drops, and the reconnect is held until two more follows are stored.
      let release: () => void = () => {}
      hold = new Promise((resolve) => { release = resolve })
      const reconnecting = new Promise<void>((resolve) => { held = resolve })
      const tried = webSockets.length
      services.hub.disconnectAll(CloseCode.GOING_AWAY, 'server shutting down')
      await page.waitForSelector('[data-testid="connection"][data-state="reconnecting"]')
      await reconnecting
      await followEmma(url, '3')
      await followEmma(url, '4')
      hold = null
      release()
      await connected(page)
      await itemsShown(page, 3)
      // `<epoch>.<seq>.<rev>`: the rev moves with the page's seen mark.
      t.match(streams.at(-1), /\/sse\?since=[0-9a-f]+\.1\.[0-9]+$/, 'the new stream resumed after the last notification shown')
      t.equal(await page.getAttribute('[data-testid="connection"]', 'data-transport'), 'sse', 'still on SSE')
      t.equal(webSockets.length, tried, 'no WebSocket tried again')
      t.equal(await page.getAttribute('[data-testid="unread-badge"]', 'data-count'), '3', 'the missed ones counted')
      t.equal(await page.evaluate('document.documentElement.scrollWidth <= innerWidth'), true, `no horizontal overflow at ${width} px`)

      await page.mouse.move(0, 0)
      const name = `/tmp/sse-fallback-${width}.png`
      await page.screenshot({ path: name, fullPage: true })
      t.comment(`screenshot: ${name}`)
    })
  }
}

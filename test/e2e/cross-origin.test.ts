// An app on its own origin calling the gateway's API from a real browser: Chromium enforces CORS,
// so only what the gateway's answers allow reaches the page. Another port of 127.0.0.1 is another origin.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { Browser } from 'playwright-core'
import { signIn } from '../helpers/clients.js'
import { launchChromium } from '../helpers/chromium.js'
import { startGateway } from '../helpers/gateway.js'
import { recordCount } from '../helpers/kafka.js'

/** What the app's page sees of one call: its status and a field of its answer, or what fetch rejected with. */
type Seen = { status: number, seen: unknown } | { error: string }

/** What the page sees of each of its calls: history, a follow of Bruno, and its retry with the same key. */
interface Calls { history: Seen, follow: Seen, retry: Seen }

/** A site of its own: an empty page at `/`, on a port of its own. Resolves its origin. */
async function serveApp (t: Test): Promise<string> {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>app</title>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Loads the app's page at `origin` and, from it, reads history and follows Bruno (twice, one key). */
async function callFromPage (t: Test, browser: Browser, origin: string, api: string, token: string): Promise<Calls> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(origin)
  return await page.evaluate(`(${IN_PAGE})(${JSON.stringify(api)}, ${JSON.stringify(token)})`) as Calls
}

// The page's script, as text: tsx would wrap named functions in a helper the page does not have.
const IN_PAGE = `async (api, token) => {
  const call = async (path, init, read) => {
    try {
      const response = await fetch(api + path, { ...init, headers: { authorization: 'Bearer ' + token, ...init.headers } })
      return { status: response.status, seen: await read(response) }
    } catch (error) {
      return { error: String(error) }
    }
  }
  // JSON and an Idempotency-Key: not a "simple" request, so the browser asks first (a preflight).
  const follow = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'app-follow-1' },
    body: JSON.stringify({ followeeId: '2' })
  }
  return {
    history: await call('/api/notifications', {}, async (response) => (await response.json()).unread),
    follow: await call('/api/follows', follow, async (response) => Object.keys(await response.json())),
    retry: await call('/api/follows', follow, async (response) => response.headers.get('idempotent-replayed'))
  }
}`

const browser = await launchChromium(t)
if (browser !== undefined) {
  t.test('a page on an allowed origin reads history and follows with a bearer token; a page on any other origin is blocked by the browser', async (t) => {
    const [app, other] = [await serveApp(t), await serveApp(t)]
    const gateway = await startGateway(t, { env: { ALLOWED_ORIGINS: app } })
    const emma = await signIn(gateway.url, '1')

    const allowed = await callFromPage(t, browser, app, gateway.url, emma)
    t.same(allowed, {
      history: { status: 200, seen: 0 },
      follow: { status: 202, seen: ['notification'] },
      retry: { status: 202, seen: 'true' }
    }, `${app}: every call answered, the exposed Idempotent-Replayed header readable`)

    const blocked = await callFromPage(t, browser, other, gateway.url, emma)
    for (const [name, seen] of Object.entries(blocked)) {
      t.match(seen, { error: /TypeError: Failed to fetch/ }, `${other}: ${name} never reaches the page (fetch rejects, as on any CORS refusal)`)
    }
    // The other page's POSTs never left the browser (their preflight got no CORS headers).
    t.equal(await recordCount(gateway.config.kafka.topic), 1, 'one follow on the topic: the allowed page\'s, once')
  })
}

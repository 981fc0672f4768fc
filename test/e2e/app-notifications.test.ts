// An app's own notifications on the page, as a new team would publish them: jwt mode, HS256 tokens
// signed here, a backend's POST /api/notifications to a user no directory lists.
import t, { type Test } from 'tap'
import type { Browser, Page, Route } from 'playwright-core'
import { buildPage, launchChromium, watchErrors } from '../helpers/chromium.js'
import { startGateway } from '../helpers/gateway.js'
import { idToken, jwtMode } from '../helpers/id-tokens.js'

const IDENTITY = { secret: 'the-apps-identity-service-signs-with-this', audience: 'notify.example.com' }
const BO = 'u-90b1'
/** The app's own sites, stood in for by routes of the browser context: nothing leaves the machine. */
const APP = 'https://app.example.com'
const CDN = 'https://cdn.example.com'
const AVATAR = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#e07a5f"/></svg>'

const reply = {
  type: 'comment.reply',
  title: 'New reply to your comment',
  message: 'Ana replied: "Great point!"',
  url: `${APP}/posts/42#comment-7`,
  data: { postId: 42, excerpt: 'Great point!', thread: { depth: 2 }, resolved: false },
  actor: { id: 'u-1', name: 'Ana', avatarUrl: `${CDN}/avatars/u-1.svg` }
}
const invoice = {
  type: 'invoice.paid',
  message: 'Invoice 7 was paid.',
  url: '/invoices/7?tab=paid',
  data: { amount: 129.5, currency: 'EUR' },
  actor: { id: 'billing', name: 'Lena', avatarUrl: `${CDN}/avatars/missing.png` }
}
// Longer than a phone is wide, with no place to break but anywhere.
const long = {
  type: `report.${'x'.repeat(50)}`,
  title: 'T'.repeat(200),
  message: `A report is ready: ${'m'.repeat(400)}`,
  url: `https://reports.${'r'.repeat(50)}.example.com/${'p'.repeat(1800)}`,
  data: { reference: 'R'.repeat(300), [`key-${'k'.repeat(60)}`]: 'v'.repeat(60) },
  actor: { id: 'reports', name: 'N'.repeat(60) }
}

async function publish (url: string, content: Record<string, unknown>): Promise<Response> {
  const service = await idToken(IDENTITY, 'comments-backend', { scope: 'notify:service' })
  return await fetch(`${url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${service}` },
    body: JSON.stringify({ recipients: [BO], ...content })
  })
}

async function published (t: Test, url: string, content: Record<string, unknown>): Promise<void> {
  const response = await publish(url, content)
  t.equal(response.status, 202, `${String(content['type'])} published`)
}

/**
 * Bo's page at `width` px, signed in with a token of the identity service. `prepare` runs before
 * the page loads; `referers` collects the Referer of every request to the app's site.
 */
async function bosPage (t: Test, browser: Browser, url: string, width: number, prepare: (page: Page) => Promise<void> = async () => {}): Promise<{ page: Page, referers: Array<string | undefined> }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } })
  t.teardown(() => context.close())
  const referers: Array<string | undefined> = []
  const html = async (route: Route): Promise<void> => await route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>app</title>' })
  await context.route(`${APP}/**`, async (route) => {
    referers.push((await route.request().allHeaders())['referer'])
    await html(route)
  })
  await context.route(`${url}/invoices/**`, html)
  await context.route(`${CDN}/**`, async (route) => {
    if (route.request().url().endsWith('/missing.png')) await route.fulfill({ status: 404 })
    else await route.fulfill({ contentType: 'image/svg+xml', body: AVATAR })
  })
  const page = await context.newPage()
  watchErrors(t, page)
  await prepare(page)
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]')
  await page.click('#token-details summary')
  await page.fill('[data-testid="token-input"]', await idToken(IDENTITY, BO, { name: 'Bo' }))
  await page.press('[data-testid="token-input"]', 'Enter')
  await page.waitForSelector('[data-testid="connection"][data-state="connected"]')
  return { page, referers }
}

function itemOf (page: Page, text: string) {
  return page.locator('[data-testid="feed-item"]', { hasText: text })
}

const browser = await launchChromium(t)
if (browser !== undefined) {
  buildPage()

  for (const width of [1280, 390]) {
    t.test(`at ${width} px: an app's notification shows its title, message, data, type and actor's picture; its link opens an absolute URL in a new tab, a path in this one`, async (t) => {
      const { url } = await startGateway(t, { env: jwtMode(IDENTITY) })
      const { page, referers } = await bosPage(t, browser, url, width)
      for (const content of [long, invoice, reply]) await published(t, url, content)
      const replyItem = itemOf(page, reply.message)
      const invoiceItem = itemOf(page, invoice.message)
      await replyItem.waitFor()
      await invoiceItem.waitFor()
      await itemOf(page, long.message).waitFor()

      t.equal(await replyItem.locator('[data-testid="item-title"]').textContent(), reply.title, 'the title')
      t.equal(await replyItem.locator('.message').textContent(), reply.message, 'the message under it')
      t.same(await replyItem.locator('[data-testid="item-data"] dt').allTextContents(), ['postId', 'excerpt', 'resolved'], 'data: its top-level scalars, the nested one left out')
      t.same(await replyItem.locator('[data-testid="item-data"] dd').allTextContents(), ['42', 'Great point!', 'false'])
      t.equal(await replyItem.locator('[data-testid="item-type"]').textContent(), 'comment.reply', 'the type, as a label')
      t.equal(await replyItem.locator('[data-testid="item-host"]').textContent(), 'app.example.com ↗', 'where the link leads')
      const picture = replyItem.locator('[data-testid="avatar-image"]')
      t.equal(await picture.getAttribute('src'), reply.actor.avatarUrl)
      await picture.evaluate(async (image) => { await (image as unknown as { decode: () => Promise<void> }).decode() })
      t.equal(await picture.evaluate((image) => Reflect.get(image, 'naturalWidth')), 64, 'the actor\'s picture, loaded')
      // A picture that fails to load is removed, and the initial under it shows.
      await invoiceItem.locator('[data-testid="avatar-image"]').waitFor({ state: 'detached' })
      t.equal(await invoiceItem.locator('[data-testid="avatar"]').textContent(), 'L', 'a missing picture: the initial')
      t.equal(await invoiceItem.locator('[data-testid="item-title"]').count(), 0, 'no title, none shown')
      t.equal(await invoiceItem.locator('[data-testid="item-link"]').textContent(), invoice.message, 'without a title, the message is the link')

      t.equal(await page.evaluate('document.documentElement.scrollWidth <= innerWidth'), true, `no horizontal overflow at ${width} px, with long titles, urls, data and names`)
      // Outside the repository: to look at, not to compare against. The pointer, left where the
      // sign-in form was, would hover an item.
      await page.mouse.move(0, 0)
      for (const [name, fullPage] of [[`/tmp/page-render-${width}.png`, true], [`/tmp/page-render-${width}-top.png`, false]] as const) {
        await page.screenshot({ path: name, fullPage })
        t.comment(`screenshot: ${name}`)
      }

      const outLink = replyItem.locator('[data-testid="item-link"]')
      t.same([await outLink.getAttribute('href'), await outLink.getAttribute('target'), await outLink.getAttribute('rel')], [reply.url, '_blank', 'noopener noreferrer'])
      const [tab] = await Promise.all([page.context().waitForEvent('page'), outLink.click()])
      await tab.waitForLoadState()
      t.equal(tab.url(), reply.url, 'an absolute URL opens in a new tab')
      t.equal(await tab.evaluate('window.opener'), null, 'which cannot reach the feed\'s window')
      t.same(referers, [undefined], 'nor learns the feed\'s address')
      t.equal(page.url(), `${url}/`, 'the feed stays where it was')

      const pathLink = invoiceItem.locator('[data-testid="item-link"]')
      t.equal(await pathLink.getAttribute('target'), null)
      await Promise.all([page.waitForURL(`${url}${invoice.url}`), pathLink.click()])
      t.pass('a path opens in this tab')
    })
  }

  t.test('markup and script in a notification are shown as text and never run; a javascript: url is refused, and one slipped into a frame is no link', async (t) => {
    const { url } = await startGateway(t, { env: jwtMode(IDENTITY) })
    const refused = await publish(url, { ...invoice, url: 'javascript:window.pwned=1' })
    t.equal(refused.status, 400, 'the API refuses a javascript: url')
    t.match(await refused.json(), { code: 'INVALID_BODY', message: /body\/url/ })

    // Defence in depth: the page checks a url itself, even in a frame the gateway would never send.
    const { page } = await bosPage(t, browser, url, 390, async (page) => {
      await page.routeWebSocket(/\/ws(\?|$)/, (socket) => {
        const server = socket.connectToServer()
        server.onMessage((frame) => socket.send(typeof frame === 'string' ? frame.replace('"url":"/slipped"', '"url":"javascript:window.pwned=3"') : frame))
      })
    })
    const markup = {
      type: 'comment.reply',
      title: '<script>window.pwned = 1</script>',
      message: '<img src=x onerror=window.pwned=2>',
      data: { note: '<img src=x onerror=window.pwned=4>' },
      url: '/posts/1'
    }
    const slipped = { type: 'comment.reply', message: 'A link that became script on the way.', url: '/slipped' }
    await published(t, url, markup)
    await published(t, url, slipped)
    const markupItem = itemOf(page, markup.message)
    const slippedItem = itemOf(page, slipped.message)
    await markupItem.waitFor()
    await slippedItem.waitFor()

    t.equal(await markupItem.locator('[data-testid="item-title"]').textContent(), markup.title, 'the title, as literal text')
    t.equal(await markupItem.locator('.message').textContent(), markup.message, 'the message, as literal text')
    t.equal(await markupItem.locator('[data-testid="item-data"] dd').textContent(), markup.data.note, 'data, as literal text')
    t.equal(await page.locator('[data-testid="feed"] img:not([data-testid="avatar-image"]), [data-testid="feed"] script').count(), 0, 'no element made of it')
    t.equal(await slippedItem.locator('[data-testid="item-link"]').count(), 0, 'a javascript: url makes no link')
    await slippedItem.click()
    t.equal(page.url(), `${url}/`, 'a click on that item goes nowhere')
    t.equal(await page.evaluate('typeof window.pwned'), 'undefined', 'nothing ran')
  })
}

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { follow, signIn } from '../helpers/clients.js'
import { buildPage, launchChromium } from '../helpers/chromium.js'
import { anotherTab, feedItem, signedInPage } from '../helpers/feed-page.js'
import { startGateway } from '../helpers/gateway.js'

/** Screenshots for people to look at, outside the repo: only when SHOTS_DIR names a folder. */
const SHOTS_DIR = process.env.SHOTS_DIR

async function shoot (t: Test, page: Page, name: string): Promise<void> {
  if (SHOTS_DIR === undefined) return
  mkdirSync(SHOTS_DIR, { recursive: true })
  const path = join(SHOTS_DIR, name)
  await page.screenshot({ path, fullPage: true })
  t.comment(`screenshot: ${path}`)
}

/** `followerId` follows `followeeId` over the API. */
async function followBy (url: string, followerId: string, followeeId: string): Promise<void> {
  const response = await follow(url, await signIn(url, followerId), followeeId, { 'idempotency-key': `${followerId}-${followeeId}-${Math.random()}` })
  if (!response.ok) throw new Error(`follow answered ${response.status}`)
}

function badge (page: Page, testId: 'unread-badge' | 'unseen-badge', count: number) {
  return page.locator(`[data-testid="${testId}"][data-count="${count}"]`).waitFor({ state: 'attached' })
}

const NO_OVERFLOW = 'document.documentElement.scrollWidth <= innerWidth'

const browser = await launchChromium(t)
if (browser !== undefined) {
  buildPage()

  for (const width of [1280, 390]) {
    t.test(`at ${width} px: three follows are one row; one tab archives the group and the other drops it live; the archive lists it`, async (t) => {
      const { url } = await startGateway(t)
      const emma = await signedInPage(t, browser, url, '1', { viewport: { width, height: 800 } })
      const other = await anotherTab(t, emma)
      for (const follower of ['2', '3', '4']) await followBy(url, follower, '1')

      const row = feedItem(emma, 'Lena, Rick and Bruno started following you.')
      await row.waitFor()
      await feedItem(other, 'Lena, Rick and Bruno started following you.').waitFor()
      t.equal(await emma.locator('[data-testid="feed-item"]').count(), 1, 'one row for the group')
      t.equal(await row.getAttribute('data-count'), '3')
      t.equal(await row.locator('[data-testid="avatars"] .avatar').count(), 3, 'stacked initials')
      await badge(other, 'unread-badge', 3)
      t.equal(await emma.evaluate(NO_OVERFLOW), true, 'no horizontal overflow')
      const archive = row.locator('[data-testid="action-archive"]')
      const box = await archive.boundingBox()
      t.ok(box !== null && box.x >= 0 && box.x + box.width <= width, 'the archive button is on screen')
      t.match(await archive.getAttribute('aria-label'), /^Archive: Lena, Rick and Bruno/, 'named for the row')
      await shoot(t, emma, `inbox-${width}.png`)
      await row.locator('[data-testid="action-menu"]').click()
      await shoot(t, emma, `inbox-menu-${width}.png`)
      await row.locator('[data-testid="action-menu"]').click()

      await archive.click()
      await other.locator('[data-testid="feed-item"]').first().waitFor({ state: 'detached' })
      await badge(other, 'unread-badge', 0)
      await emma.locator('[data-testid="feed-item"]').first().waitFor({ state: 'detached' })
      t.equal(await emma.evaluate('document.activeElement?.id'), 'feed-title', 'the focus moves to the list\'s heading, not the page\'s top')

      await other.click('[data-testid="tab-archived"]')
      const archived = feedItem(other, 'Lena, Rick and Bruno started following you.')
      await archived.waitFor()
      t.equal(await archived.locator('[data-testid="action-unarchive"]').count(), 1)
      await shoot(t, other, `inbox-archived-${width}.png`)
      await archived.locator('[data-testid="action-unarchive"]').click()
      await feedItem(emma, 'Lena, Rick and Bruno started following you.').waitFor()
      t.pass('unarchived from the other tab: back in this one')
    })
  }

  t.test('seen clears the bell (and the title) in every tab, not the unread marks', async (t) => {
    const { url } = await startGateway(t)
    const emma = await signedInPage(t, browser, url, '1', { viewport: { width: 390, height: 800 } })
    const other = await anotherTab(t, emma)
    // The archive is shown in both: a new notification is not seen there.
    for (const tab of [emma, other]) await tab.click('[data-testid="tab-archived"]')
    await followBy(url, '2', '1')
    await badge(emma, 'unseen-badge', 1)
    await badge(other, 'unseen-badge', 1)
    t.equal(await emma.title(), '(1) Emma · kafka-notify')
    await shoot(t, emma, 'bell-unseen-390.png')

    await emma.click('[data-testid="tab-all"]')
    const row = feedItem(emma, 'Bruno started following you.')
    await row.waitFor()
    await badge(emma, 'unseen-badge', 0)
    await badge(other, 'unseen-badge', 0)
    t.equal(await other.title(), 'Emma · kafka-notify', 'seen in one tab: the other\'s title too')
    t.equal(await row.getAttribute('data-read'), 'false', 'still unread')
    await badge(emma, 'unread-badge', 1)
  })

  t.test('mark read, mark unread and delete, live in the other tab; the focus stays in the list', async (t) => {
    const { url } = await startGateway(t)
    const emma = await signedInPage(t, browser, url, '1')
    const other = await anotherTab(t, emma)
    await followBy(url, '2', '1')
    const row = feedItem(emma, 'Bruno started following you.')
    await row.locator('[data-testid="action-read"]').click()
    await feedItem(other, 'Bruno started following you.').and(other.locator('[data-read="true"]')).waitFor()
    t.equal(await emma.evaluate('document.activeElement?.dataset.action'), 'unread', 'the focus moves to the button that undoes it')
    await emma.keyboard.press('Enter')
    await feedItem(other, 'Bruno started following you.').and(other.locator('[data-read="false"]')).waitFor()
    await badge(other, 'unread-badge', 1)

    await row.locator('[data-testid="action-menu"]').click()
    await row.locator('[data-testid="action-delete"]').click()
    await feedItem(other, 'Bruno started following you.').waitFor({ state: 'detached' })
    await badge(other, 'unread-badge', 0)
    const token = await signIn(url, '1')
    const history = await (await fetch(`${url}/api/notifications`, { headers: { authorization: `Bearer ${token}` } })).json() as { items: unknown[] }
    t.same(history.items, [], 'gone from history')
  })

  t.test('the Unread tab shows what is unread; Clear all empties the inbox of every tab, and a follow after it shows', async (t) => {
    const { url } = await startGateway(t, { env: { GROUP_WINDOW_MS: '0' } })
    const emma = await signedInPage(t, browser, url, '1')
    const other = await anotherTab(t, emma)
    await followBy(url, '2', '1')
    await followBy(url, '3', '1')
    await feedItem(emma, 'Rick started following you.').waitFor()
    await emma.click('[data-testid="tab-unread"]')
    await feedItem(emma, 'Bruno started following you.').locator('[data-testid="action-read"]').click()
    await feedItem(emma, 'Bruno started following you.').waitFor({ state: 'hidden' })
    t.equal(await feedItem(emma, 'Rick started following you.').isVisible(), true, 'the unread one stays')
    t.equal(await emma.evaluate('document.activeElement?.dataset.action'), 'read', 'the focus moves to the next row\'s same button')

    await other.click('[data-testid="clear-all"]')
    await emma.locator('[data-testid="feed-empty"]').waitFor()
    t.equal(await emma.textContent('[data-testid="feed-empty"]'), 'Nothing unread. You are all caught up.')
    await other.locator('[data-testid="feed-item"]').first().waitFor({ state: 'detached' })
    await badge(other, 'unread-badge', 0)
    await followBy(url, '4', '1')
    await feedItem(other, 'Lena started following you.').waitFor()
    await feedItem(emma, 'Lena started following you.').waitFor()
    t.equal(await other.locator('[data-testid="feed-item"]').count(), 1, 'only what came after Clear all')
    await other.click('[data-testid="tab-archived"]')
    await feedItem(other, 'Rick started following you.').waitFor()
    t.equal(await other.locator('[data-testid="feed-item"]').count(), 2, 'the cleared ones are in the archive')
    t.equal(await other.isVisible('[data-testid="clear-all"]'), false, 'no Clear all in the archive')
  })

  t.test('a person muted from an item\'s menu: their next follow never shows; unmuted from the panel', async (t) => {
    const { url } = await startGateway(t, { env: { GROUP_WINDOW_MS: '0' } })
    const emma = await signedInPage(t, browser, url, '1')
    const other = await anotherTab(t, emma)
    await followBy(url, '2', '1')
    const row = feedItem(emma, 'Bruno started following you.')
    await row.locator('[data-testid="action-menu"]').click()
    await row.locator('[data-testid="action-mute"]').click()
    await other.click('[data-testid="preferences"] summary')
    await other.locator('[data-testid="muted-people"] li[data-user-id="2"]', { hasText: 'Bruno' }).waitFor()

    await followBy(url, '2', '1')
    await followBy(url, '3', '1')
    await feedItem(emma, 'Rick started following you.').waitFor()
    t.equal(await emma.locator('[data-testid="feed-item"]').count(), 2, 'Rick\'s follow, and only the first of Bruno\'s')
    t.equal(await emma.isVisible('[data-testid="feed-empty"]'), false, 'rows that came live: no "no notifications" text')
    await badge(emma, 'unread-badge', 2)

    await other.click('[data-testid="unmute"]')
    await emma.click('[data-testid="preferences"] summary')
    await emma.locator('[data-testid="muted-people"] li[data-user-id="2"]').waitFor({ state: 'detached' })
    await emma.check('[data-testid="mute-follows"]')
    await other.locator('[data-testid="mute-follows"]:checked').waitFor()
    await shoot(t, emma, 'preferences-1280.png')
    t.pass('mute follows, live in the other tab')
  })
}

import type { Test } from 'tap'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import { watchErrors } from './chromium.js'

/**
 * Opens a fresh browser context (its own storage), loads the page and signs in as `userId`.
 * `prepare` runs before the page loads (routes that must see its first requests).
 */
export async function signedInPage (t: Test, browser: Browser, url: string, userId: string, options: BrowserContextOptions = {},
  prepare: (page: Page) => Promise<void> = async () => {}): Promise<Page> {
  const context = await browser.newContext(options)
  t.teardown(() => context.close())
  const page = await context.newPage()
  watchErrors(t, page)
  await prepare(page)
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]')
  await page.selectOption('[data-testid="sign-in-select"]', userId)
  await page.click('[data-testid="sign-in-button"]')
  await connected(page)
  return page
}

export async function connected (page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="connection"][data-state="connected"]')
}

export function feedItem (page: Page, text: string) {
  return page.locator('[data-testid="feed-item"]', { hasText: text })
}

/** Another tab in the same context: it signs in by itself as the context's last user. */
export async function anotherTab (t: Test, page: Page): Promise<Page> {
  const tab = await page.context().newPage()
  watchErrors(t, tab)
  await tab.goto(page.url())
  await connected(tab)
  return tab
}

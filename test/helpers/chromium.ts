import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { type Browser, chromium, type Page } from 'playwright-core'
import { projectRoot } from '../../server/project-root.js'
import { isCI } from './ci.js'

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Launches headless Chromium for a file's root test `t`, closed at its teardown. Without Chromium
 * the file is skipped, saying how to install it, and fails instead under CI. Resolves undefined then.
 */
export async function launchChromium (t: Test): Promise<Browser | undefined> {
  if (!existsSync(chromiumPath)) {
    const message = `Chromium is missing at ${chromiumPath}: install it with \`apt-get install chromium\` or set CHROMIUM_PATH`
    if (isCI()) {
      t.fail(message)
    } else {
      t.comment(message)
      t.plan(0, message)
    }
    return undefined
  }
  // The flags from NOTES.md; playwright gives each launch a fresh profile itself (it refuses --user-data-dir).
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}

/** Compiles web/src and client/ to dist/web (web/src served at /js/, client/ at /client/). */
export function buildPage (): void {
  const root = projectRoot()
  try {
    execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'web/tsconfig.json'], { cwd: root, encoding: 'utf8' })
  } catch (error) {
    throw new Error(`tsc -p web/tsconfig.json failed:\n${(error as { stdout?: string }).stdout ?? ''}`, { cause: error })
  }
}

/** A script error on the page fails `t`; waits on the page give up after 15 s. */
export function watchErrors (t: Test, page: Page): void {
  page.setDefaultTimeout(15_000)
  page.on('pageerror', (error) => t.fail(`page error: ${error.message}`))
}

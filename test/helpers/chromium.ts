import { existsSync } from 'node:fs'
import type { Test } from 'tap'
import { type Browser, chromium } from 'playwright-core'
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

// The temp dir of one `npm run cluster`: removed when the command is done, and also when it is
// gone without being done (a second Ctrl-C, SIGKILL), by a watchdog.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { whenOwnerGone } from './watchdog.js'

/**
 * Seconds the watchdog waits before removing the dir: the brokers' watchdogs may still be
 * stopping JVMs that write into it, SIGKILL 15 s after SIGTERM.
 */
const WAIT_FOR_BROKERS_SECONDS = 16

export interface RunDir {
  path: string
  /** Removes it now, and the watchdog with it. */
  remove (): void
}

export function makeRunDir (prefix: string): RunDir {
  const path = mkdtempSync(join(tmpdir(), prefix))
  const watchdog = whenOwnerGone('run-dir-watchdog', `sleep ${WAIT_FOR_BROKERS_SECONDS}; rm -rf "$1"`, [path])
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true })
      watchdog.cancel()
    }
  }
}

// The temp dir of one `npm run cluster`: removed when the command is done, and also when it is
// gone without being done (a second Ctrl-C, SIGKILL), by a watchdog.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Seconds the watchdog waits before removing the dir: the brokers' watchdogs (kafka/node.ts) may
 * still be stopping JVMs that write into it, SIGKILL 15 s after SIGTERM.
 */
const WAIT_FOR_BROKERS_SECONDS = 16

export interface RunDir {
  path: string
  /** Removes it now, and the watchdog with it. */
  remove (): void
}

export function makeRunDir (prefix: string): RunDir {
  const path = mkdtempSync(join(tmpdir(), prefix))
  // A detached shell that reads the pipe until this process closes it: only this process holds
  // the write end, so it closes however this process ends.
  const script = `while read -r _; do :; done; sleep ${WAIT_FOR_BROKERS_SECONDS}; rm -rf "$1"`
  const watchdog = spawn('sh', ['-c', script, 'run-dir-watchdog', path], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
  watchdog.unref()
  ;(watchdog.stdin as Socket | null)?.unref()
  watchdog.stdin?.on('error', () => {})
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true })
      watchdog.kill('SIGKILL')
    }
  }
}

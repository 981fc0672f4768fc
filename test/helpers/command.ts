import { spawn, type SpawnOptions } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { TestContext } from './gateway.js'
import { Waiters } from './waiters.js'

/** A command run as a user runs it in a terminal: its output by line, and how it exited. */
export interface Command {
  pid: number
  stdout: string[]
  stderr: string[]
  exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
  /** Waits, bounded, until `done()` holds; checked again at each line and at the exit. */
  until (what: () => string, done: () => boolean, timeoutMs: number): Promise<void>
}

/**
 * Starts `command` in a process group of its own, as a terminal's foreground job is (so a signal
 * can reach all of it at once), and kills the group if the test ends while it still runs.
 */
export function runCommand (t: TestContext, command: string, args: string[], options: SpawnOptions = {}): Command {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = new Waiters()
  const run: Command = { pid: child.pid!, stdout: [], stderr: [], exit: undefined, until: (what, done, timeoutMs) => output.until(what, done, timeoutMs) }
  child.once('exit', (code, signal) => {
    run.exit = { code, signal }
    output.wake()
  })
  t.teardown(() => { if (run.exit === undefined) process.kill(-run.pid, 'SIGKILL') })
  createInterface({ input: child.stdout! }).on('line', (line) => { run.stdout.push(line); output.wake() })
  createInterface({ input: child.stderr! }).on('line', (line) => { run.stderr.push(line); output.wake() })
  return run
}

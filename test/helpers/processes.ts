import { readdirSync, readFileSync } from 'node:fs'
import { eventually } from './eventually.js'

/** Whether process `pid` runs; a zombie (exited, not reaped by its new parent) counts as gone. */
export function isRunning (pid: number): boolean {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return false
  }
  return !/^\d+ \(.*\) Z/.test(stat)
}

/** Waits until none of `pids` runs, within `timeoutMs`; resolves with how many seconds that took. */
export async function secondsUntilGone (pids: readonly number[], timeoutMs: number): Promise<number> {
  const start = performance.now()
  await eventually(`processes ${pids.join(', ')} gone`, () => pids.filter(isRunning), (running) => running.length === 0, { timeoutMs, everyMs: 50 })
  return Math.round(performance.now() - start) / 1000
}

/**
 * Sends SIGSTOP to `pid` and resolves once every thread of it has stopped. The kernel stops a
 * process only when one of its threads, woken to take the signal, gets the CPU; until then its other
 * threads run on, so on a busy machine a broker can still answer a request sent after `kill()`.
 */
export async function freeze (pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP')
  await eventually(`every thread of process ${pid} stopped`, () => threadStates(pid), (states) => states.length > 0 && states.every((state) => state === 'T'), { everyMs: 5 })
}

/** The state letter (R, S, D, T…) of each thread of `pid`; empty when it is gone or a thread went meanwhile. */
function threadStates (pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))?.[1] ?? '?')
  } catch {
    return []
  }
}

import { readFileSync } from 'node:fs'
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

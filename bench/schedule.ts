import { now } from './clock.js'

/**
 * Open loop: item i is due at `start + i / rate`, whatever became of the earlier ones. Each tick
 * calls `sendDue(due, start)` with how many are due by now; it answers how many have left so far
 * (sent, or skipped), and the next tick is timed for the next one. Ends once all `total` have
 * left, or `limitMs` after the start; resolves with the start and how long the sending took.
 */
export async function runOpenLoop (total: number, rate: number, limitMs: number, sendDue: (due: number, start: number) => number): Promise<{ start: number, sendingMs: number }> {
  const interval = 1000 / rate
  const start = now() + 1
  const giveUpAt = start + limitMs
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const next = sendDue(Math.min(total, Math.floor((now() - start) / interval) + 1), start)
      if (next >= total || now() >= giveUpAt) {
        resolve()
        return
      }
      // Timers fire no earlier than asked and in whole milliseconds; a late tick sends what is due at once.
      setTimeout(tick, Math.max(0, Math.floor(start + next * interval - now())))
    }
    setTimeout(tick, 1)
  })
  return { start, sendingMs: now() - start }
}

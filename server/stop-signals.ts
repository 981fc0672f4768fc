import { constants } from 'node:os'

/** npm and tsx each pass a terminal's Ctrl-C on to their child, which the terminal signals too. */
const SAME_CTRL_C_MS = 1000

/**
 * SIGINT or SIGTERM calls `stop` once `canStop()` says there is something to stop in order;
 * before that, or on a second Ctrl-C, the process exits at once (the watchdogs stop the children).
 * Signals within a second of the first count as that one: under `npm start` or `npm run`, one
 * Ctrl-C arrives as two or three within milliseconds. For the gateway (server/main.ts) and the
 * local servers' commands (local/) alike.
 */
export function onStopSignals (canStop: () => boolean, stop: (signal: NodeJS.Signals) => void): void {
  let firstAt: number | undefined
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (firstAt !== undefined && performance.now() - firstAt < SAME_CTRL_C_MS) return
      if (firstAt !== undefined || !canStop()) process.exit(128 + constants.signals[signal])
      firstAt = performance.now()
      stop(signal)
    })
  }
}

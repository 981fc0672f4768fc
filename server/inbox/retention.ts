import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { Logger } from '../logger.js'
import type { Inbox } from './types.js'

const PRUNE_EVERY_MS = 60_000

/**
 * Runs retention in the background: a bounded chunk at a time, yielding to the event loop
 * between chunks, so pruning a large backlog never holds up the consumer or the sockets.
 */
export function startRetention (inbox: Inbox, log: Logger, everyMs = PRUNE_EVERY_MS): () => Promise<void> {
  let stopped = false
  const isStopped = (): boolean => stopped
  let running: Promise<void> = Promise.resolve()
  const run = async (): Promise<void> => {
    let total = 0
    let removed = 0
    do {
      removed = await inbox.prune()
      total += removed
      await yieldToEventLoop()
    } while (removed > 0 && !isStopped())
    if (total > 0) log.info({ removed: total }, 'Inbox retention pruned notifications')
  }
  const timer = setInterval(() => {
    running = running.then(run).catch((error: unknown) => log.error({ err: error }, 'Inbox retention failed'))
  }, everyMs).unref()
  return async () => {
    stopped = true
    clearInterval(timer)
    await running
  }
}

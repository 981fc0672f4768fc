import type { Clock } from './clock.js'
import type { Logger } from './logger.js'

/**
 * The default clock of the bounds below. Its timers keep the process running until they fire: a
 * close step that hangs on a promise nothing will settle must still end in time, and the steps
 * after it run, even when nothing else is left to keep the process up.
 */
const boundingClock: Clock = {
  now: () => performance.now(),
  schedule (fn, ms) {
    const timer = setTimeout(fn, ms)
    return () => clearTimeout(timer)
  }
}

/**
 * Why a part of the gateway is not ready. `reason` is what the unauthenticated /readyz answers: one
 * of a fixed list (docs/protocol.md) that names the dependency and its state. `detail` is what the
 * driver said (hosts, addresses, roles), for the log only.
 */
export interface Unready {
  reason: string
  detail?: string
}

/** One step of a shutdown: what it does (named in the log), and the doing. */
export interface CloseStep {
  name: string
  close: () => unknown
}

export interface CloseOptions {
  /** A step still running after this long counts as failed, and the next one starts. */
  stepTimeoutMs?: number
  /** The level of the line a finished step logs: `debug` for the steps inside one resource's close. */
  doneLevel?: 'info' | 'debug'
  /** What `stepTimeoutMs` is measured on. */
  clock?: Clock
}

/**
 * Runs every step in order, each whatever the ones before threw or however long they hung (a
 * failed Kafka close must not leave the inbox open, nor a broker that is gone the process
 * running); logs each failure and goes on. Never throws.
 */
export async function closeInOrder (steps: readonly CloseStep[], log: Logger, options: CloseOptions = {}): Promise<void> {
  const { stepTimeoutMs, doneLevel = 'info', clock } = options
  for (const { name, close } of steps) {
    try {
      const closing = Promise.resolve().then(close)
      await (stepTimeoutMs === undefined
        ? closing
        : within(closing, stepTimeoutMs, () => { throw new Error(`${name} took more than ${stepTimeoutMs} ms`) }, clock))
      log[doneLevel](`Shutdown step done: ${name}`)
    } catch (error) {
      log.error({ err: error }, `Shutdown step failed: ${name}; going on`)
    }
  }
}

/**
 * The close steps of resources, each declared where its resource is created. They run newest
 * first, so a resource closes before those it was built on (the Kafka consumer, which flushes the
 * inbox before each commit, before the inbox).
 */
export class CloseStack {
  readonly #steps: CloseStep[] = []
  #closed: Promise<void> | undefined

  /** Declares how to close (or stop) a resource just created. */
  defer (name: string, close: () => unknown): void {
    this.#steps.unshift({ name, close })
  }

  /** Runs every step once, newest first (see `closeInOrder`); a later call waits for the first. */
  close (log: Logger): Promise<void> {
    this.#closed ??= closeInOrder(this.#steps, log)
    return this.#closed
  }
}

/** What `work` settles with, or, if it has not settled within `ms`, what `late` returns (or throws). */
export async function within<T> (work: Promise<T>, ms: number, late: () => T, clock: Clock = boundingClock): Promise<T> {
  let cancel: (() => void) | undefined
  const timeout = new Promise<T>((resolve) => {
    cancel = clock.schedule(() => resolve(Promise.resolve().then(late)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    cancel?.()
  }
}

/**
 * A readiness probe: `ask` makes a real request and turns its outcome into the verdict; one that
 * has not answered within `timeoutMs` gets `late()` instead (a server that is gone may hold a
 * request for minutes). Checks that arrive while one is under way share it.
 */
export function boundedProbe<T> (ask: () => Promise<T>, timeoutMs: number, late: () => T, clock?: Clock): () => Promise<T> {
  let running: Promise<T> | undefined
  return () => {
    running ??= within(ask(), timeoutMs, late, clock).finally(() => { running = undefined })
    return running
  }
}

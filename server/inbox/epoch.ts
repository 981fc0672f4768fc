import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** What a store recorded about its last run. */
export interface LastRun {
  epoch: string
  /** A random id per open; also written to a file beside the store (the run marker). */
  runId: string
  /** The kernel's boot id while that run had the store open. */
  bootId: string
  /** Whether that run closed the store itself. */
  clean: boolean
}

export type EpochVerdict = { keep: true } | { keep: false, why: string }

/**
 * Whether the store can be trusted to hold every write it acknowledged before, so cursors issued
 * then still name the same notifications. Rows are pushed before the log is fsynced
 * (synchronous=NORMAL): a process crash loses none of them (the kernel still has the log), a
 * machine crash may lose the tail. A store that is not the one last run here (a restore, a copy)
 * may lack anything newer than itself.
 */
export function judgeLastRun (last: LastRun | undefined, marker: string | undefined, bootId: string | undefined): EpochVerdict {
  if (last === undefined) return { keep: false, why: 'a new store' }
  if (marker !== last.runId) return { keep: false, why: 'the store is not the one last run here (restored or copied)' }
  if (last.clean) return { keep: true }
  if (bootId === undefined || bootId !== last.bootId) return { keep: false, why: 'the last run did not close the store and the machine restarted since' }
  return { keep: true }
}

export function newEpoch (): string {
  return randomBytes(4).toString('hex')
}

export function newRunId (): string {
  return randomBytes(8).toString('hex')
}

/** The running kernel's boot id (Linux), or undefined where there is none to read. */
export function currentBootId (): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return undefined
  }
}

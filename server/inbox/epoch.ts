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

/** A partition whose stored position is behind the consumer group's committed offset. */
export interface Behind { partition: number, stored: bigint, committed: bigint }

/**
 * The partitions whose stored position (0 when none) is behind the group's committed offset (-1
 * when none): records the group had committed, so the store had applied them, and has them no
 * more. The store lost writes it had acknowledged (a failover to a standby that lagged, a restore
 * of a copy). `rewoundAt` holds, per partition, the committed offset at which an earlier check
 * found it behind: that loss began a new epoch already and is being made good (the consumer
 * applies it again), so a partition counts only when its committed offset moved past it since.
 */
export function newlyBehind (committed: ReadonlyMap<number, bigint>, stored: ReadonlyMap<number, bigint>, rewoundAt: ReadonlyMap<number, bigint>): Behind[] {
  const behind: Behind[] = []
  for (const [partition, offset] of committed) {
    const position = stored.get(partition) ?? 0n
    if (position < offset && offset > (rewoundAt.get(partition) ?? 0n)) behind.push({ partition, stored: position, committed: offset })
  }
  return behind
}

/** Why a store found behind needs a new epoch, naming the partitions. */
export function describeBehind (behind: readonly Behind[]): string {
  const partitions = behind.map(({ partition, stored, committed }) => `${partition}: ${stored} < ${committed}`).join(', ')
  return `the store is behind the consumer group's committed offsets (partition ${partitions}): it lost writes it had acknowledged (a failover to a standby that lagged, a restored copy)`
}

/** `rewoundAt` as the stores keep it, in their `meta` table (per topic): JSON, partition → offset. */
export function encodeRewoundAt (rewoundAt: ReadonlyMap<number, bigint>): string {
  return JSON.stringify(Object.fromEntries([...rewoundAt].map(([partition, offset]) => [partition, offset.toString()])))
}

export function decodeRewoundAt (text: string | undefined): Map<number, bigint> {
  if (text === undefined) return new Map()
  return new Map(Object.entries(JSON.parse(text) as Record<string, string>).map(([partition, offset]) => [Number(partition), BigInt(offset)]))
}

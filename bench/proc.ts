import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** Resident set size of a process, from /proc (Linux only); undefined when it is gone. */
export function rssBytes (pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kilobytes = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
    return kilobytes === undefined ? undefined : Number(kilobytes) * 1024
  } catch {
    return undefined
  }
}

let ticksPerSecond: number | undefined

function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** The fields of /proc/<pid>/stat after the command name, from field 3 (state) on; undefined when it is gone. */
function statFields (pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are fixed.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) a process has used so far, children not included. */
export function cpuSeconds (pid: number): number | undefined {
  const fields = statFields(pid)
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) / clockTicks()
}

/**
 * CPU seconds of a process and all its descendants so far (PostgreSQL: the postmaster and its
 * backends). Each live process counts its own time and that of its children it has reaped, so a
 * backend that exits during an interval still counts, through its parent, and one born in it
 * counts from zero.
 */
export function treeCpuSeconds (root: number): number | undefined {
  const children = new Map<number, number[]>()
  const used = new Map<number, number>()
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return undefined
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statFields(entry)
    if (fields === undefined) continue
    const pid = Number(entry)
    const parent = Number(fields[1])
    children.set(parent, [...(children.get(parent) ?? []), pid])
    // utime, stime, cutime, cstime: fields 14–17.
    used.set(pid, Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]))
  }
  if (!used.has(root)) return undefined
  let ticks = 0
  const pending = [root]
  // A process tree has no cycles; the bound only guards against a /proc read mid-change.
  for (let seen = 0; pending.length > 0 && seen < used.size; seen++) {
    const pid = pending.pop()!
    ticks += used.get(pid) ?? 0
    pending.push(...(children.get(pid) ?? []))
  }
  return ticks / clockTicks()
}

/** CPU seconds all processors spent busy since boot (/proc/stat; idle and I/O wait excluded). */
function machineBusySeconds (): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
    return (user + nice + system + irq + softirq + steal) / clockTicks()
  } catch {
    return undefined
  }
}

/** A process, or (`tree`) a process with all its descendants. */
export type Measured = number | { tree: number }

/**
 * Measures how busy each bench process was over an interval, in percent of one core (200% is
 * both cores of a 2-core machine): the first clue to which process limits a number. A name may
 * stand for several processes (the WebSocket client processes), whose shares are summed.
 */
export class CpuMeter {
  readonly #pids: Array<[string, Measured[]]>
  readonly #start = new Map<Measured, number>()
  readonly #startedAt: number
  readonly #machineStart: number | undefined

  constructor (pids: Record<string, Measured | ReadonlyArray<Measured | undefined> | undefined>) {
    this.#pids = Object.entries(pids).map(([name, value]): [string, Measured[]] =>
      [name, (Array.isArray(value) ? value : [value]).filter((pid): pid is Measured => pid !== undefined)])
    this.#startedAt = performance.now()
    this.#machineStart = machineBusySeconds()
    for (const [, group] of this.#pids) {
      for (const pid of group) {
        const used = secondsOf(pid)
        if (used !== undefined) this.#start.set(pid, used)
      }
    }
  }

  /** Percent of one core per name since the meter was made. */
  read (): Record<string, number> {
    const elapsed = (performance.now() - this.#startedAt) / 1000
    const busy: Record<string, number> = {}
    if (elapsed <= 0) return busy
    for (const [name] of this.#pids) {
      const used = this.#used(name)
      if (used !== undefined) busy[name] = Math.round(used / elapsed * 100)
    }
    // What the rest of the machine did meanwhile: other people's work skews every figure.
    const machineNow = machineBusySeconds()
    if (this.#machineStart !== undefined && machineNow !== undefined) {
      const machine = Math.round((machineNow - this.#machineStart) / elapsed * 100)
      const ours = Object.values(busy).reduce((total, value) => total + value, 0)
      busy.others = Math.max(0, machine - ours)
    }
    return busy
  }

  /**
   * CPU µs `name` used since the meter was made, per one of `count` operations (a follow, a
   * delivered notification): unlike a percentage it does not depend on how long the step was.
   */
  microsPer (name: string, count: number): number | undefined {
    const used = this.#used(name)
    return used === undefined || count <= 0 ? undefined : Math.round(used / count * 1e7) / 10
  }

  /** CPU seconds of the processes under `name` since the meter was made; undefined when none could be read. */
  #used (name: string): number | undefined {
    const group = this.#pids.find(([candidate]) => candidate === name)?.[1] ?? []
    let used: number | undefined
    for (const pid of group) {
      const before = this.#start.get(pid)
      const after = secondsOf(pid)
      if (before === undefined || after === undefined) continue
      used = (used ?? 0) + after - before
    }
    return used
  }
}

function secondsOf (measured: Measured): number | undefined {
  return typeof measured === 'number' ? cpuSeconds(measured) : treeCpuSeconds(measured.tree)
}

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

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

/** CPU seconds (user + system) a process has used so far, children not included. */
export function cpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / clockTicks()
  } catch {
    return undefined
  }
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

/**
 * Measures how busy each bench process was over an interval, in percent of one core (200% is
 * both cores of a 2-core machine): the first clue to which process limits a number. A name may
 * stand for several processes (the WebSocket client processes), whose shares are summed.
 */
export class CpuMeter {
  readonly #pids: Array<[string, number[]]>
  readonly #start = new Map<number, number>()
  readonly #startedAt: number
  readonly #machineStart: number | undefined

  constructor (pids: Record<string, number | ReadonlyArray<number | undefined> | undefined>) {
    this.#pids = Object.entries(pids).map(([name, value]): [string, number[]] =>
      [name, (Array.isArray(value) ? value : [value]).filter((pid): pid is number => pid !== undefined)])
    this.#startedAt = performance.now()
    this.#machineStart = machineBusySeconds()
    for (const [, group] of this.#pids) {
      for (const pid of group) {
        const used = cpuSeconds(pid)
        if (used !== undefined) this.#start.set(pid, used)
      }
    }
  }

  /** Percent of one core per name since the meter was made. */
  read (): Record<string, number> {
    const elapsed = (performance.now() - this.#startedAt) / 1000
    const busy: Record<string, number> = {}
    if (elapsed <= 0) return busy
    for (const [name, group] of this.#pids) {
      let used = 0
      let known = false
      for (const pid of group) {
        const before = this.#start.get(pid)
        const after = cpuSeconds(pid)
        if (before === undefined || after === undefined) continue
        used += after - before
        known = true
      }
      if (known) busy[name] = Math.round(used / elapsed * 100)
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
}

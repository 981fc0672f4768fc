// What keeps every throwaway server (a Kafka node, redis-server, PostgreSQL, a gateway) and temp
// dir from outliving the process that started it, however that process ends, SIGKILL included: a
// detached shell reads a pipe whose only write end this process holds. EOF on it (this process is
// gone, or asked for it) is the shell's cue to stop what it watches.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'

/** Shell code that returns once the owner's pipe (fd 3) reads EOF. */
const OWNER_GONE = 'while read -r _ <&3; do :; done'
/** How long a command killed with SIGKILL may take to be gone. */
const GONE_TIMEOUT_MS = 10_000

export interface WatchedProcess {
  /** The command's own pid (not its watchdog shell's). */
  readonly pid: number
  /** Resolves with its exit status (`exit code 0`, `signal SIGKILL`) once it is gone; does not keep this process running by itself. */
  readonly exited: Promise<string>
  /** Its exit status once it is gone; undefined while it runs. */
  readonly status: string | undefined
  /** SIGTERM, then SIGKILL after the grace; resolves with the exit status. Safe to repeat. */
  stop (): Promise<string>
  /** Sends `signal` to the command itself (a crash, where `stop` is a shutdown); resolves once it is gone. */
  kill (signal: NodeJS.Signals): Promise<string>
}

export interface WatchOptions {
  /** The watchdog shell's name in `ps`. */
  name: string
  /** Seconds from SIGTERM to SIGKILL, at `stop()` or when the owner is gone. */
  graceSeconds: number
  cwd?: string
  /** The command's whole environment; default this process's. */
  env?: NodeJS.ProcessEnv
  /** Each line the command writes, stdout and stderr alike; without it they go to this process's stderr. */
  onLine?: (line: string) => void
}

/**
 * Runs `command` under a watchdog shell and resolves once it runs. Until `stop` or `kill`, it does
 * not keep this process running: a forgotten server is stopped when its owner exits.
 */
export async function startWatched (command: string, args: readonly string[], options: WatchOptions): Promise<WatchedProcess> {
  const shell = spawn('sh', ['-c', commandScript(options.graceSeconds), options.name, command, ...args], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
    // Its own process group: a terminal's Ctrl-C reaches only the owner, which stops it in order.
    detached: true,
    stdio: ['pipe', 'pipe', options.onLine === undefined ? 'inherit' : 'pipe']
  })
  shell.stdin!.on('error', () => {}) // EPIPE when it is closed after the shell is gone
  if (options.onLine !== undefined) createInterface({ input: shell.stderr! }).on('line', options.onLine)
  const started: { pid?: number } = {}
  let status: string | undefined
  const exited = new Promise<string>((resolve) => {
    const gone = (result: string): void => {
      status = result
      resolve(result)
    }
    shell.once('error', (error) => { gone(error.message) })
    shell.once('exit', (code, signal) => {
      killGroup(shell) // if the shell was killed, its command must not outlive it
      // The shell waits for its command, unless both were killed at once: then the command may
      // still be tearing down its memory.
      void untilGone(started.pid).then(() => { gone(exitStatus(code, signal)) })
    })
  })
  const pidLine = once(createInterface({ input: shell.stdout! }), 'line') as Promise<[string]>
  const [pidText] = await Promise.race([pidLine, exited.then((result) => { throw new Error(`${options.name} ended before ${command} started (${result})`) })])
  const pid = Number(pidText)
  started.pid = pid
  // Only from here on: until the pid line came, nothing else kept this process running.
  shell.unref()
  for (const pipe of [shell.stdin, shell.stdout, shell.stderr]) (pipe as Socket | null)?.unref()

  // Until the command is gone, a stop or kill in progress keeps this process running: otherwise
  // nothing would, and the await of `exited` would be cut short.
  let stopped: Promise<string> | undefined
  return {
    pid,
    exited,
    get status () { return status },
    stop: async () => {
      stopped ??= (async () => {
        shell.ref()
        shell.stdin!.end() // what this process dying would do: one path for both
        return await exited
      })()
      return await stopped
    },
    kill: async (signal) => {
      // Once it is gone, its pid may be another process's.
      if (status !== undefined) return status
      shell.ref()
      try {
        process.kill(pid, signal)
      } catch {
        // already gone
      }
      return await exited
    }
  }
}

/**
 * The command runs in the background; the shell prints its pid as its first stdout line (the
 * command's own stdout goes to stderr), passes SIGTERM and SIGINT on to it and exits with its
 * status. A watcher stops it (SIGTERM, then SIGKILL after `graceSeconds`) on the owner's EOF.
 */
function commandScript (graceSeconds: number): string {
  return `
exec 3<&0 </dev/null
"$@" >&2 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
echo "$child"
(
  ${OWNER_GONE}
  kill -TERM "$child" 2>/dev/null
  i=0
  while kill -0 "$child" 2>/dev/null && [ "$i" -lt ${graceSeconds} ]; do sleep 1; i=$((i + 1)); done
  kill -KILL "$child" 2>/dev/null
) &
watcher=$!
# 2>/dev/null: the shell would report a command killed by a signal ("Killed") on stderr.
wait "$child" 2>/dev/null
status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child" 2>/dev/null; status=$?; done
kill "$watcher" 2>/dev/null
exit "$status"
`
}

export interface OwnerWatch {
  /** Runs the script now and resolves once it is done. Safe to repeat. */
  runNow (): Promise<void>
  /** Ends the watchdog without running the script. */
  cancel (): void
}

/**
 * A watchdog with no command of its own: `script` (shell code; its arguments are "$1"…) runs once
 * this process is gone, however it ends, or at `runNow()`. For what outlives a command: a
 * daemonized server, a directory.
 */
export function whenOwnerGone (name: string, script: string, args: readonly string[]): OwnerWatch {
  const shell = spawn('sh', ['-c', `exec 3<&0 </dev/null\n${OWNER_GONE}\n${script}`, name, ...args], { detached: true, stdio: ['pipe', 'ignore', 'inherit'] })
  shell.stdin!.on('error', () => {})
  const exited = new Promise<void>((resolve) => { shell.once('exit', () => resolve()) })
  shell.unref()
  ;(shell.stdin as Socket | null)?.unref()
  let ran: Promise<void> | undefined
  return {
    runNow: async () => {
      ran ??= (async () => {
        shell.ref() // until it is done: nothing else may keep this process waiting for it
        shell.stdin!.end()
        await exited
      })()
      await ran
    },
    cancel: () => { shell.kill('SIGKILL') }
  }
}

/** As a shell reports it: a status above 128 is the command killed by signal (status − 128). */
function exitStatus (code: number | null, signal: NodeJS.Signals | null): string {
  if (signal !== null) return `signal ${signal}`
  const killedBy = code !== null && code > 128 ? signalName(code - 128) : undefined
  return killedBy === undefined ? `exit code ${code ?? '?'}` : `signal ${killedBy}`
}

function signalName (number: number): string | undefined {
  return Object.entries(constants.signals).find(([, value]) => value === number)?.[0]
}

function killGroup (shell: ChildProcess): void {
  if (shell.pid === undefined) return
  try {
    process.kill(-shell.pid, 'SIGKILL')
  } catch {
    // the group is already gone
  }
}

async function untilGone (pid: number | undefined): Promise<void> {
  if (pid === undefined) return
  const deadline = performance.now() + GONE_TIMEOUT_MS
  while (isAlive(pid) && performance.now() < deadline) await delay(20)
}

// A zombie has exited: its new parent has only to reap it.
function isAlive (pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    try { // no /proc
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
}

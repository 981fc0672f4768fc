import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Pool } from 'pg'
import type { Test } from 'tap'
import { freePorts } from '../../kafka/node.js'
import { isCI } from './ci.js'

const run = promisify(execFile)
const POSTGRESQL_ROOT = '/usr/lib/postgresql'
const INSTALL_HINT = 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql'

/** A PostgreSQL server of one test file. */
export interface TestPostgres {
  /** Creates an empty database of its own for one test; returns its connection URL. */
  createDatabase (): Promise<string>
  /** Stops PostgreSQL as a crash would (`-m immediate`: no checkpoint), then starts it again on the same data. */
  crashAndRestart (): Promise<void>
  /** How long initdb and the first start took. */
  startedInMs: number
}

/** The newest installed PostgreSQL's bin dir (Debian layout), or undefined. */
export function postgresBinDir (): string | undefined {
  const versions = existsSync(POSTGRESQL_ROOT) ? readdirSync(POSTGRESQL_ROOT) : []
  return versions
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => join(POSTGRESQL_ROOT, version, 'bin'))
    .find((bin) => existsSync(join(bin, 'initdb')))
}

/**
 * Starts a throwaway PostgreSQL on a free loopback port, in a fresh temp dir, for the test `t`
 * (a file's root test): its teardown stops the server and removes the dir, and so does a watchdog
 * if this process dies without one. Without PostgreSQL installed the test is skipped with the
 * command that installs it, and fails instead under CI, where it must run. Resolves undefined then.
 */
export async function startPostgres (t: Test): Promise<TestPostgres | undefined> {
  const bin = postgresBinDir()
  if (bin === undefined) {
    if (isCI()) t.fail(`${INSTALL_HINT} (CI must run the PostgreSQL tests)`)
    else void t.skip(`SKIPPED, ${INSTALL_HINT}`, () => {})
    return undefined
  }
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'kafka-notify-pg-'))
  const asRoot = userInfo().uid === 0
  // PostgreSQL refuses to run as root: the server's files belong to the postgres user.
  if (asRoot) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout))
  const watchdog = startWatchdog(bin, dir, asRoot)
  t.teardown(() => watchdog.stop())

  const pg = async (command: string, args: string[]): Promise<void> => {
    const [file, all] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]] : [join(bin, command), args]
    await run(file, all)
  }
  await pg('initdb', ['-D', join(dir, 'data'), '--auth=trust', '-U', 'postgres', '--no-sync', '--locale=C', '-E', 'UTF8'])
  let port = 0
  const start = async (): Promise<void> => {
    // fsync off: a test server need not survive a power cut, and a crash of PostgreSQL alone
    // (immediate stop) loses no commit either way: the kernel holds the log.
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
    try {
      await pg('pg_ctl', ['-D', join(dir, 'data'), '-w', '-t', '30', '-l', join(dir, 'log'), '-o', options, 'start'])
    } catch (error) {
      throw new Error(`PostgreSQL did not start on port ${port}: ${logTail(dir)}`, { cause: error })
    }
  }
  for (let attempt = 1; ; attempt++) {
    [port] = await freePorts(1) as [number]
    try {
      await start()
      break
    } catch (error) {
      if (attempt === 3) throw error // a port taken between the probe and the start, three times, is not a race
    }
  }

  const databases = new Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, max: 1 })
  databases.on('error', () => {}) // the crash test breaks its idle connection on purpose
  t.teardown(() => databases.end()) // teardowns run last first: before the server stops
  return {
    startedInMs: Date.now() - started,
    createDatabase: async () => {
      const name = `inbox_${randomBytes(5).toString('hex')}`
      await databases.query(`CREATE DATABASE ${name}`)
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    crashAndRestart: async () => {
      await pg('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', 'stop'])
      await start()
    }
  }
}

/**
 * A detached shell that stops the server and removes its dir when its stdin closes: at teardown,
 * or when this process dies, however it dies (only this process holds the pipe's write end).
 */
function startWatchdog (bin: string, dir: string, asRoot: boolean): { stop: () => Promise<void> } {
  const pgCtl = `${asRoot ? 'runuser -u postgres -- ' : ''}"$1/pg_ctl"`
  const script = `
while read -r _; do :; done
if [ -f "$2/data/postmaster.pid" ]; then ${pgCtl} -D "$2/data" -m immediate stop >/dev/null 2>&1; fi
rm -rf "$2"
`
  const child: ChildProcess = spawn('sh', ['-c', script, 'postgres-watchdog', bin, dir], { detached: true, stdio: ['pipe', 'ignore', 'inherit'] })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => resolve()) })
  child.unref()
  ;(child.stdin as Socket | null)?.unref()
  let stopped: Promise<void> | undefined
  return {
    stop: async () => {
      stopped ??= (async () => {
        child.ref() // until it is done: nothing else may keep this process waiting for it
        child.stdin?.end()
        await exited
      })()
      await stopped
    }
  }
}

function logTail (dir: string): string {
  try {
    return readFileSync(join(dir, 'log'), 'utf8').trim().split('\n').slice(-5).join(' | ')
  } catch {
    return 'no log'
  }
}

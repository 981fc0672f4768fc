// A throwaway PostgreSQL on a free loopback port, from Debian's `postgresql` package, for the
// tests, the bench and `npm run cluster`. PostgreSQL refuses to run as root: as root the server's
// files belong to the `postgres` user and every command runs as it.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Pool } from 'pg'
import { freePorts } from './ports.js'
import { whenOwnerGone, type OwnerWatch } from './watchdog.js'

const run = promisify(execFile)
const POSTGRESQL_ROOT = '/usr/lib/postgresql'
export const POSTGRES_INSTALL_HINT = 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql'

export interface LocalPostgres {
  port: number
  /** The `postgres` database's URL. */
  url: string
  /** Creates an empty database of its own; returns its connection URL. */
  createDatabase (): Promise<string>
  /** Stops the server as a crash would (`-m immediate`: no checkpoint); `start` brings it back. */
  kill (): Promise<void>
  /** Starts it again on the same data and port after `kill`. */
  start (): Promise<void>
  /** Stops the server and removes its dir; safe to call more than once. */
  stop (): Promise<void>
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
 * Starts PostgreSQL in a fresh temp dir on a free port (or `port`), trusting local connections,
 * fsync off: nothing it holds is meant to outlive it. A watchdog stops it and removes the dir if
 * this process dies without calling `stop`. Throws when PostgreSQL is not installed.
 */
export async function startLocalPostgres (options: { port?: number } = {}): Promise<LocalPostgres> {
  const bin = postgresBinDir()
  if (bin === undefined) throw new Error(POSTGRES_INSTALL_HINT)
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'kafka-notify-pg-'))
  const asRoot = userInfo().uid === 0
  if (asRoot) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout))
  const watchdog = startWatchdog(bin, dir, asRoot)
  const pg = async (command: string, args: string[]): Promise<void> => {
    const [file, all] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]] : [join(bin, command), args]
    await run(file, all)
  }
  let port = options.port ?? 0
  const start = async (): Promise<void> => {
    // fsync off: a throwaway server need not survive a power cut, and a crash of PostgreSQL alone
    // (immediate stop) loses no commit either way: the kernel holds the log.
    const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`
    try {
      await pg('pg_ctl', ['-D', join(dir, 'data'), '-w', '-t', '30', '-l', join(dir, 'log'), '-o', settings, 'start'])
    } catch (error) {
      throw new Error(`PostgreSQL did not start on port ${port}: ${logTail(dir)}`, { cause: error })
    }
  }
  try {
    await pg('initdb', ['-D', join(dir, 'data'), '--auth=trust', '-U', 'postgres', '--no-sync', '--locale=C', '-E', 'UTF8'])
    for (let attempt = 1; ; attempt++) {
      if (options.port === undefined) [port] = await freePorts(1) as [number]
      try {
        await start()
        break
      } catch (error) {
        // A port taken between the probe and the start, three times, is not a race.
        if (attempt === 3 || options.port !== undefined) throw error
      }
    }
  } catch (error) {
    await watchdog.runNow()
    throw error
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const databases = new Pool({ connectionString: url, max: 1 })
  databases.on('error', () => {}) // a kill breaks its idle connection
  let stopped: Promise<void> | undefined
  return {
    port,
    url,
    startedInMs: Date.now() - started,
    createDatabase: async () => {
      const name = `inbox_${randomBytes(5).toString('hex')}`
      await databases.query(`CREATE DATABASE ${name}`)
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    kill: async () => { await pg('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']) },
    start,
    stop: async () => {
      stopped ??= (async () => {
        await databases.end().catch(() => {})
        await watchdog.runNow()
      })()
      await stopped
    }
  }
}

/** The server and its dir go when this process does, however it ends, or at `runNow()`. */
function startWatchdog (bin: string, dir: string, asRoot: boolean): OwnerWatch {
  const pgCtl = `${asRoot ? 'runuser -u postgres -- ' : ''}"$1/pg_ctl"`
  return whenOwnerGone('postgres-watchdog', `
if [ -f "$2/data/postmaster.pid" ]; then ${pgCtl} -D "$2/data" -m immediate stop >/dev/null 2>&1; fi
rm -rf "$2"
`, [bin, dir])
}

function logTail (dir: string): string {
  try {
    return readFileSync(join(dir, 'log'), 'utf8').trim().split('\n').slice(-5).join(' | ')
  } catch {
    return 'no log'
  }
}

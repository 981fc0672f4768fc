import { DatabaseError, Pool, type PoolClient } from 'pg'
import type { Logger } from '../logger.js'
import { InboxUnavailableError } from './types.js'

/**
 * What every connection of the inbox asks of PostgreSQL, so that the server ends by itself what a
 * gateway left hanging: a gateway frozen (SIGSTOP, a VM pause) or cut off (a network that drops
 * packets without a reset) inside a transaction would otherwise keep its row locks for as long as
 * TCP takes to notice (hours), and every other gateway's appends would queue behind them.
 */
export const SESSION_TIMEOUTS_MS = {
  /** A transaction whose client sends nothing for this long is ended, its locks released. */
  idleInTransaction: 5000,
  /** A statement that waits this long for a lock fails (55P03): transient, tried again. */
  lock: 4000,
  /** A statement that runs this long is cancelled (57014): transient, tried again. */
  statement: 8000
} as const

/**
 * Every call of the inbox, the wait for a connection included, ends within this: one still running
 * then (a server that stopped answering) is abandoned and its connection destroyed. Longer than
 * the statement timeout, so that the server's own cancel, which keeps the connection, comes first.
 */
export const CALL_BOUND_MS = 10_000
/** A server that does not accept the connection within this is as good as down (a lost host would hold it for minutes). */
const CONNECT_TIMEOUT_MS = 5000
/** TCP keepalive from the first idle second this long: a dead peer is noticed in about a minute, not the OS's two hours. */
const KEEPALIVE_DELAY_MS = 10_000
/** Tries of a transaction that PostgreSQL aborted to break a deadlock. */
const MAX_ATTEMPTS = 5

/**
 * SQLSTATEs that say the server cannot serve now, not that the statement is wrong: connection
 * exceptions (class 08), a server shutting down or starting up (57P01-57P03), too many connections,
 * a statement cancelled by statement_timeout (57014), a lock not granted within lock_timeout (55P03),
 * a session ended by idle_in_transaction_session_timeout (25P03), a serialization failure (40001).
 */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[123]$|53300$|57014$|55P03$|25P03$|40001$)/
/** What node-postgres throws, without a SQLSTATE, when the connection is refused, lost or times out. */
const UNAVAILABLE_MESSAGE = /^Connection terminated|connection error|timeout exceeded when trying to connect|not queryable/i

/** A pool of connections of the inbox, each with the session timeouts above and TCP keepalive. */
export function createPool (url: string, options: { role: string, max: number, log?: Logger | undefined }): Pool {
  const pool = new Pool({
    connectionString: url,
    // Tells the pools apart in pg_stat_activity.
    application_name: `kafka-notify ${options.role}`,
    max: options.max,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    idle_in_transaction_session_timeout: SESSION_TIMEOUTS_MS.idleInTransaction,
    lock_timeout: SESSION_TIMEOUTS_MS.lock,
    statement_timeout: SESSION_TIMEOUTS_MS.statement
  })
  // An idle connection that breaks (a PostgreSQL restart) is reported here; unheard, it would
  // crash the process. The pool replaces it on the next query.
  pool.on('error', (error) => options.log?.warn({ err: error, pool: options.role }, 'Inbox: an idle PostgreSQL connection failed'))
  return pool
}

/**
 * Runs `work` on a connection of `pool` within CALL_BOUND_MS, turning the errors of a server that
 * cannot serve now into InboxUnavailableError. A call past its bound is abandoned: its connection
 * is destroyed, which fails the statement in flight (PostgreSQL rolls back what it had begun once
 * it sees the connection go) and keeps the connection out of the pool.
 */
export async function withConnection<T> (pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  let client: PoolClient | undefined
  let released = false
  let late = false
  const release = (destroy: boolean): void => {
    if (client === undefined || released) return
    released = true
    client.release(destroy)
  }
  const timer = setTimeout(() => {
    late = true
    release(true)
  }, CALL_BOUND_MS)
  try {
    try {
      client = await pool.connect()
    } catch (error) {
      if (pool.totalCount >= pool.options.max && isUnavailable(error)) {
        // Every connection was busy: the server is fine, this gateway asks too much of it.
        throw new InboxUnavailableError(`inbox (PostgreSQL) busy: no connection of ${pool.options.max} was free within ${CONNECT_TIMEOUT_MS} ms`, { cause: error })
      }
      throw error
    }
    if (late) {
      release(true)
      throw new InboxUnavailableError(`inbox (PostgreSQL) did not answer within ${CALL_BOUND_MS} ms`)
    }
    // A connection lost between two statements is reported as an 'error' event on the client (the
    // pending statement fails as well): unheard, it would crash the process. The pool listens only
    // while a client is idle.
    const lost = (): void => {}
    client.on('error', lost)
    let failed = false
    try {
      return await work(client)
    } catch (error) {
      failed = true
      if (late) throw new InboxUnavailableError(`inbox (PostgreSQL) did not answer within ${CALL_BOUND_MS} ms`, { cause: error })
      throw error
    } finally {
      client.off('error', lost)
      // After a failure the session's state is unknown (a timeout may have ended it, the
      // connection may be gone): a new connection costs little, and failures are rare.
      release(failed)
    }
  } catch (error) {
    if (error instanceof InboxUnavailableError || !isUnavailable(error)) throw error
    throw new InboxUnavailableError(`inbox (PostgreSQL) unreachable: ${(error as Error).message}`, { cause: error })
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs `work` in a transaction on one connection (see withConnection). A transaction PostgreSQL
 * aborted to break a deadlock is tried again: it changed nothing, and the other one has gone on.
 */
export async function inTransaction<T> (pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return await withConnection(pool, async (client) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query('BEGIN')
        const result = await work(client)
        await client.query('COMMIT')
        return result
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || !(error instanceof DatabaseError) || error.code !== '40P01') throw error
        await client.query('ROLLBACK')
      }
    }
  })
}

function isUnavailable (error: unknown): boolean {
  if (error instanceof DatabaseError) return error.code !== undefined && UNAVAILABLE_SQLSTATE.test(error.code)
  if (!(error instanceof Error)) return false
  // Socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT…) carry their errno name.
  const code = (error as { code?: unknown }).code
  return (typeof code === 'string' && /^E[A-Z]+$/.test(code)) || UNAVAILABLE_MESSAGE.test(error.message)
}

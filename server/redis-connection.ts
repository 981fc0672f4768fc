import { Redis } from 'ioredis'
import type { Logger } from './logger.js'

/** The ioredis settings the gateway's connections differ in. */
export interface ConnectionOptions {
  commandTimeout?: number
  enableOfflineQueue?: boolean
  autoResubscribe?: boolean
  maxRetriesPerRequest?: number
}

/**
 * One ioredis connection of this gateway, named `kafka-notify:<role>` in `CLIENT LIST`. It
 * reconnects forever (100 ms, 200 ms… up to 2 s apart) and logs one line when the connection is
 * lost and one when it is back, not one per attempt.
 */
export function connectRedis (url: string, role: string, log: Logger, options: ConnectionOptions = {}): Redis {
  const client = new Redis(url, {
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
    ...options,
    connectionName: `kafka-notify:${role}`
  })
  let up = false
  let closing = false
  client.on('ready', () => {
    up = true
    log.info({ role }, 'Redis connected')
  })
  client.on('close', () => {
    if (up && !closing && client.status !== 'end') log.warn({ role }, 'Redis connection lost; reconnecting')
    up = false
  })
  client.on('error', (error: Error) => log.debug({ err: error, role }, 'Redis connection error'))
  client.on('end', () => { closing = true })
  return client
}

/** Closes a connection: QUIT when it is up (replies in flight still arrive), else at once. */
export async function quitRedis (client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  try {
    await client.quit()
  } catch {
    client.disconnect()
  }
}

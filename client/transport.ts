import type { Position } from './feed-sync.js'
import type { ServerFrame } from './types.js'

/** The two ways to the live feed: `/ws`, and `/sse` where a WebSocket cannot get through. */
export type TransportKind = 'websocket' | 'sse'

/** What one connection attempt is opened with. */
export interface Dial {
  token: string
  /** The resume point: catch-up from here (null: live only). */
  since: Position | null
}

/**
 * How an attempt ended, in WebSocket close codes whatever the transport (docs/protocol.md's close
 * codes; 1006 for a connection lost without one). `opened`: the connection was established (a
 * browser reports an upgrade refused with 401 as 1006 before `open`). `status`: the HTTP status of
 * a refusal, where the transport can tell.
 */
export interface TransportEnd {
  code: number
  reason: string
  opened: boolean
  status?: number
}

export interface TransportHandlers {
  onFrame: (frame: ServerFrame) => void
  /** Called once, unless the transport was closed by `close()`. */
  onEnd: (end: TransportEnd) => void
}

export interface Transport {
  /** Closes without a call to `onEnd`. */
  close: () => void
}

/** Opens one connection attempt to the feed. */
export type OpenTransport = (dial: Dial, handlers: TransportHandlers) => Transport

/** A frame from its JSON text; null for anything else (unknown frame types are the caller's to ignore). */
export function parseFrame (data: unknown): ServerFrame | null {
  if (typeof data !== 'string') return null
  try {
    const frame: unknown = JSON.parse(data)
    return typeof frame === 'object' && frame !== null && 'type' in frame ? frame as ServerFrame : null
  } catch {
    return null
  }
}

/** The feed endpoint `path` of the gateway at `baseUrl`, with `since` when resuming. */
export function feedUrl (baseUrl: string, path: '/ws' | '/sse', since: Position | null): string {
  const url = new URL(path, baseUrl)
  if (path === '/ws') url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  if (since !== null) url.searchParams.set('since', since.cursor)
  return url.href
}

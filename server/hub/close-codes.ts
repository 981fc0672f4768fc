/**
 * WebSocket close codes the gateway uses; docs/protocol.md is the reference for clients.
 * 4000–4499: the client may reconnect (after fixing what the code says); 4500–4999: it must not.
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INTERNAL_ERROR: 1011,
  /** The inbox could not be read (PostgreSQL down) for the catch-up: reconnect with `since`, with backoff. */
  TRY_AGAIN_LATER: 1013,
  TOKEN_EXPIRED: 4001,
  SLOW_CLIENT: 4008,
  /** The live feed met a hole the inbox can no longer fill (retention deleted it): reconnect with `since`. */
  FEED_GAP: 4009,
  TOO_MANY_CONNECTIONS: 4029,
  PROTOCOL_VIOLATION: 4500
} as const
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

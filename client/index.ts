/**
 * kafka-notify's client library: one user's live feed from a gateway, for browsers and Node 20+.
 * No dependencies. README.md "Client library" shows its use; docs/protocol.md the protocol below.
 */
export { NotifyClient, type ArchiveView, type NotifyClientOptions, type FeedEvents, type NotificationEvent, type StateEvent } from './notify-client.js'
export { ApiError, GatewayApi, retryWithSameKey, staleCursor, type StateRoute } from './api.js'
export type { ConnectionState, ConnectionStatus } from './connection.js'
export type { Position } from './feed-sync.js'
export type { Dial, OpenTransport, Transport, TransportEnd, TransportHandlers, TransportKind } from './transport.js'
export type { WebSocketConstructor } from './transport-ws.js'
export type { FeedCounts, FeedNotification, GroupedItem, GroupSummary, HistoryItem, HistoryPage, IssuedToken, Muted, Selection, ServerFrame, StateChange, User } from './types.js'

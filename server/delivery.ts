import { notificationFrame, unreadFrame } from './frames.js'
import type { Hub } from './hub/hub.js'
import type { Inbox } from './inbox/types.js'
import type { BatchHandler } from './kafka/types.js'

export interface DeliveryObserver {
  /** A notification was handed to the recipient's open sockets; `recordTimestamp` is when Kafka got it. */
  delivered (recordTimestamp: number, sockets: number): void
}

/**
 * What the consumer does with each batch: persist it (idempotent on id), then push every new
 * notification to the recipient's open tabs, then one `unread` frame per recipient. A duplicate
 * (a batch consumed again after a crash or rebalance) is already in the inbox and is not pushed
 * twice.
 */
export function createDeliveryHandler (inbox: Inbox, hub: Hub, observer?: DeliveryObserver): BatchHandler {
  return async (batch) => {
    const appended = await inbox.append(batch.map((consumed) => consumed.notification))
    if (appended.length === 0) return
    const timestamps = new Map(batch.map((consumed) => [consumed.notification.id, consumed.timestamp]))
    const recipients = new Set<string>()
    for (const { notification } of appended) {
      if (hub.isOnline(notification.userId)) recipients.add(notification.userId)
    }
    if (recipients.size === 0) return
    const unread = new Map<string, number>()
    for (const userId of recipients) unread.set(userId, await inbox.unread(userId))
    hub.batch(() => {
      for (const { seq, notification } of appended) {
        if (!recipients.has(notification.userId)) continue
        const sockets = hub.send(notification.userId, { text: notificationFrame(notification, seq), seq })
        observer?.delivered(timestamps.get(notification.id) ?? Date.now(), sockets)
      }
      for (const [userId, count] of unread) hub.send(userId, { text: unreadFrame(count) })
    })
  }
}

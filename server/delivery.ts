import { encodeCursor } from './cursor.js'
import { notificationFrame } from './frames.js'
import type { Hub } from './hub/hub.js'
import type { Inbox } from './inbox/types.js'
import type { BatchHandler } from './kafka/types.js'

export interface DeliveryObserver {
  /** A notification was handed to the recipient's open sockets; `recordTimestamp` is when Kafka got it. */
  delivered (recordTimestamp: number, sockets: number): void
}

/**
 * What the consumer does with each batch: persist it (each record once, each id once), then push
 * every new notification to the recipient's open tabs, one frame each, with the unread count in
 * it. A record consumed again (after a crash or rebalance) is not stored or pushed twice.
 */
export function createDeliveryHandler (inbox: Inbox, hub: Hub, observer?: DeliveryObserver): BatchHandler {
  return async (batch) => {
    const { appended } = await inbox.append(batch)
    if (appended.length === 0) return
    const timestamps = new Map(batch.map((consumed) => [consumed.notification.id, consumed.timestamp]))
    hub.batch(() => {
      for (const { seq, notification, json, unread } of appended) {
        if (!hub.isOnline(notification.userId)) continue
        const sockets = hub.send(notification.userId, { text: notificationFrame(json, encodeCursor(inbox.epoch, seq), seq, unread), seq })
        observer?.delivered(timestamps.get(notification.id) ?? Date.now(), sockets)
      }
    })
  }
}

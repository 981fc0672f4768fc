import type { ConsumedRecord } from '../../server/kafka/types.js'
import type { Notification } from '../../server/notification.js'

/** Where `consumedRecords` puts the records: one partition, consecutive offsets from `firstOffset`. */
export interface RecordPlace {
  topic?: string
  partition?: number
  firstOffset?: number
}

/** The notifications as the consumer hands them on (JSON and timestamp included), one record each. */
export function consumedRecords (notifications: readonly Notification[], { topic = 'notifications', partition = 0, firstOffset = 0 }: RecordPlace = {}): ConsumedRecord[] {
  const timestamp = Date.now()
  return notifications.map((notification, i) => ({ notification, json: JSON.stringify(notification), timestamp, topic, partition, offset: String(firstOffset + i) }))
}

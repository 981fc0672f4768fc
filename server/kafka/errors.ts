import { NotifyError } from '../errors.js'

/**
 * What can go wrong between the gateway and Kafka, as the Kafka adapter sees it. Each error says
 * whether retrying the same publish can help (`canRetry`), not how a caller should answer its own
 * clients: the HTTP mapping lives in server/http-errors.ts.
 */
export const KafkaErrorCode = {
  /** The broker refused the request or could not be reached. */
  UNAVAILABLE: 'KAFKA_UNAVAILABLE',
  /** Kafka did not acknowledge within the publish deadline; the record may still be written. */
  TIMEOUT: 'KAFKA_TIMEOUT',
  /** Too many publishes are already waiting: refused at once instead of queued without bound. */
  QUEUE_FULL: 'KAFKA_QUEUE_FULL',
  /** The bus is closing or closed. */
  CLOSED: 'KAFKA_CLOSED',
  /** The record is larger than any request the broker (or our own consumer) accepts. */
  RECORD_TOO_LARGE: 'KAFKA_RECORD_TOO_LARGE'
} as const
export type KafkaErrorCode = typeof KafkaErrorCode[keyof typeof KafkaErrorCode]

/** Every error of the Kafka adapter. */
export class KafkaError extends NotifyError<KafkaErrorCode> {}

/** Kafka could not take the record now (down, slow, overloaded or closing); a retry may succeed. */
export class KafkaUnavailableError extends KafkaError {
  constructor (message: string, options: { code?: typeof KafkaErrorCode.UNAVAILABLE | typeof KafkaErrorCode.TIMEOUT | typeof KafkaErrorCode.QUEUE_FULL | typeof KafkaErrorCode.CLOSED, cause?: unknown } = {}) {
    super(options.code ?? KafkaErrorCode.UNAVAILABLE, message, { canRetry: true, cause: options.cause })
  }
}

/** This record can never be written: a retry of the same record fails the same way. */
export class RecordTooLargeError extends KafkaError {
  /** The record's encoded size and the most a record may have, in bytes. */
  readonly bytes: number
  readonly limit: number

  constructor (bytes: number, limit: number) {
    super(KafkaErrorCode.RECORD_TOO_LARGE, `the notification is a Kafka record of ${bytes} bytes, more than the ${limit} bytes a record may have`, { canRetry: false })
    this.bytes = bytes
    this.limit = limit
  }
}

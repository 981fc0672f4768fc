import { Kafka, logLevel, type LogEntry } from 'kafkajs'
import type { Logger } from '../logger.js'

export interface KafkaClientOptions {
  brokers: string[]
  clientId: string
  /** Bounds every request, so a frozen broker turns into an error instead of a hang. */
  requestTimeoutMs: number
  /**
   * Whether its owner is closing it. kafkajs's errors are then the connections being closed (a
   * request cut off, a consumer stopped while it joins its group), logged as warnings: a clean stop
   * logs no error. The owner's own close steps still log their failures as errors.
   */
  closing?: () => boolean
}

/** A kafkajs client that logs through our logger and gives up on an unreachable broker quickly. */
export function createKafkaClient (options: KafkaClientOptions, log: Logger): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: 1000,
    requestTimeout: options.requestTimeoutMs,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 3 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log: entry }: LogEntry) => {
      const { message, ...details } = entry
      const fields = { kafka: namespace, ...details }
      if (level <= logLevel.ERROR && options.closing?.() !== true) log.error(fields, message)
      else if (level <= logLevel.WARN) log.warn(fields, message)
      else log.debug(fields, message)
    }
  })
}

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The gateway's Prometheus metrics, on a registry of its own (several apps can live in one process). */
export class Metrics {
  readonly registry = new Registry()
  readonly connections: Gauge
  readonly follows: Counter<'outcome'>
  readonly publishes: Counter<'outcome'>
  readonly published: Counter
  readonly delivered: Counter
  readonly deliveryLatency: Histogram
  readonly inboxAppend: Histogram
  readonly consumerLag: Gauge<'partition'>
  readonly deadLetters: Counter<'reason'>
  readonly disconnects: Counter<'why'>
  readonly consumerCrashes: Counter<'restarted_by'>
  readonly consumerRestarts: Counter
  readonly consumerHolds: Counter
  readonly inboxReadsRefused: Counter
  readonly produceQueued: Gauge
  readonly produceInFlight: Gauge
  readonly feedFills: Counter<'cause'>
  readonly tailRepairs: Counter
  readonly fanoutLostFrames: Counter<'why'>
  readonly redisLinkResets: Counter<'role'>
  /** Where the connections gauge reads from; set once the hub exists. */
  countConnections: (() => number) | undefined
  /** Where the produce gauges read from; set once the bus exists. */
  producerStats: (() => { queued: number, inFlight: number }) | undefined

  constructor () {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 })
    const connections = (): number => this.countConnections?.() ?? 0
    this.connections = new Gauge({
      name: 'notify_ws_connections',
      help: 'Open WebSocket connections',
      registers,
      collect () { this.set(connections()) }
    })
    this.follows = new Counter({
      name: 'notify_follows_total',
      help: 'POST /api/follows answers: accepted, or the error code',
      labelNames: ['outcome'],
      registers
    })
    this.publishes = new Counter({
      name: 'notify_publishes_total',
      help: 'POST /api/notifications answers: accepted, or the error code',
      labelNames: ['outcome'],
      registers
    })
    this.published = new Counter({
      name: 'notify_published_notifications_total',
      help: 'Notifications accepted by POST /api/notifications (one per recipient), Kafka-acknowledged',
      registers
    })
    this.delivered = new Counter({
      name: 'notify_notifications_delivered_total',
      help: 'Notifications pushed to at least one open socket',
      registers
    })
    this.deliveryLatency = new Histogram({
      name: 'notify_delivery_latency_seconds',
      help: 'From the Kafka record timestamp to the frame handed to the sockets',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
    this.inboxAppend = new Histogram({
      name: 'notify_inbox_append_seconds',
      help: 'One consumed batch written to the inbox in one transaction: rows, unread counters, Kafka positions',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers
    })
    this.consumerLag = new Gauge({
      name: 'notify_consumer_lag',
      help: 'Records behind the high watermark, per partition, as of the last batch consumed',
      labelNames: ['partition'],
      registers
    })
    this.deadLetters = new Counter({
      name: 'notify_dlq_records_total',
      help: 'Records sent to the dead-letter topic, by kind of reason',
      labelNames: ['reason'],
      registers
    })
    this.disconnects = new Counter({
      name: 'notify_ws_dropped_total',
      help: 'Sockets the gateway dropped: slow (send buffer past the bound) or dead (missed a ping)',
      labelNames: ['why'],
      registers
    })
    this.consumerCrashes = new Counter({
      name: 'notify_consumer_crashes_total',
      help: 'Kafka consumer crashes, by who restarts it: kafkajs (retriable) or the gateway (non-retriable: kafkajs gave up)',
      labelNames: ['restarted_by'],
      registers
    })
    this.consumerRestarts = new Counter({
      name: 'notify_consumer_restarts_total',
      help: 'Kafka consumers the gateway started again after kafkajs stopped one for good',
      registers
    })
    this.consumerHolds = new Counter({
      name: 'notify_consumer_holds_total',
      help: 'Times the consumer began holding its batches because the inbox failed in a way that passes (unreachable, timed out, locked)',
      registers
    })
    this.inboxReadsRefused = new Counter({
      name: 'notify_inbox_reads_refused_total',
      help: 'History and catch-up reads refused at once because too many were waiting for a PostgreSQL connection (503 INBOX_UNAVAILABLE, close 1013)',
      registers
    })
    const stats = (): { queued: number, inFlight: number } | undefined => this.producerStats?.()
    this.produceQueued = new Gauge({
      name: 'notify_produce_queued',
      help: 'Publishes waiting for a produce slot (past a bound they are refused with 503)',
      registers,
      collect () { this.set(stats()?.queued ?? 0) }
    })
    this.produceInFlight = new Gauge({
      name: 'notify_produce_in_flight',
      help: 'Produce requests holding a slot, those whose POSTs already timed out included',
      registers,
      collect () { this.set(stats()?.inFlight ?? 0) }
    })
    this.feedFills = new Counter({
      name: 'notify_feed_fills_total',
      help: 'Live tabs filled from the inbox, by cause: hole (a frame skipped a seq), resubscribed (the fan-out lost its subscription), ping (behind the feed\'s newest seq at a ping)',
      labelNames: ['cause'],
      registers
    })
    this.tailRepairs = new Counter({
      name: 'notify_feed_tail_repairs_total',
      help: 'Users whose newest frames were republished from the inbox after a publish or an append that may have lost them',
      registers
    })
    this.fanoutLostFrames = new Counter({
      name: 'notify_fanout_lost_frames_total',
      help: 'Frames that may not have reached Redis: queue_full (the pending publishes were past their bound, dropped) or failed (Redis did not take them)',
      labelNames: ['why'],
      registers
    })
    this.redisLinkResets = new Counter({
      name: 'notify_redis_link_resets_total',
      help: 'Redis connections dropped and reopened after a ping went unanswered (a link that went silent without closing)',
      labelNames: ['role'],
      registers
    })
  }
}

/**
 * The gateway's event-loop delay over a step, from its /metrics (prom-client's default metrics),
 * with the sampling interval taken out: Node's histogram records each timer period whole (10 ms
 * on an idle loop at the gateway's precision), so the step's smallest sample is subtracted.
 */
export interface LoopDelay { p50Ms: number, p99Ms: number, maxMs: number, samplingMs: number }

const TIMEOUT_MS = 5000

/** The gateway's /metrics text, or undefined when it did not answer. */
export async function scrapeMetrics (url: string): Promise<string | undefined> {
  try {
    return await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(TIMEOUT_MS) })).text()
  } catch {
    return undefined
  }
}

/**
 * prom-client resets its event-loop delay histogram at every scrape, so a scrape before a step
 * and one after it give the delay over that step: a loop that is busy, or blocked by long
 * synchronous work, shows here before it shows anywhere else.
 */
export async function scrapeLoopDelay (url: string): Promise<LoopDelay | undefined> {
  const text = await scrapeMetrics(url)
  return text === undefined ? undefined : loopDelayOf(text)
}

/** The inbox-append histogram's name: one observation per consumed batch's inbox transaction. */
export const INBOX_APPEND = 'notify_inbox_append_seconds'

/** One scrape's loop delay (reset by the scrape) and inbox-append histogram (never reset: see `appendDelta`). */
export interface GatewayScrape { loopDelay: LoopDelay | undefined, appends: ScrapedHistogram | undefined }

/** Scrapes before and after a step: the loop delay over it, and with `appendDelta` its inbox transactions. */
export async function scrapeGateway (url: string): Promise<GatewayScrape> {
  const text = await scrapeMetrics(url)
  return text === undefined ? { loopDelay: undefined, appends: undefined } : { loopDelay: loopDelayOf(text), appends: histogramOf(text, INBOX_APPEND) }
}

export function loopDelayOf (text: string): LoopDelay | undefined {
  const read = (name: string): number | undefined => {
    const value = new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1]
    return value === undefined ? undefined : Math.round(Number(value) * 1e6) / 1e3
  }
  const minMs = read('nodejs_eventloop_lag_min_seconds')
  const p50Ms = read('nodejs_eventloop_lag_p50_seconds')
  const p99Ms = read('nodejs_eventloop_lag_p99_seconds')
  const maxMs = read('nodejs_eventloop_lag_max_seconds')
  if (minMs === undefined || p50Ms === undefined || p99Ms === undefined || maxMs === undefined) return undefined
  const beyond = (ms: number): number => Math.round((ms - minMs) * 1000) / 1000
  return { p50Ms: beyond(p50Ms), p99Ms: beyond(p99Ms), maxMs: beyond(maxMs), samplingMs: minMs }
}

/** A Prometheus histogram as scraped: cumulative counts per upper bound (`+Inf` last), sum and count. */
export interface ScrapedHistogram { upperBounds: number[], cumulative: number[], sum: number, count: number }

/** Inbox appends over a step: one per consumed batch's transaction (`notify_inbox_append_seconds`). */
export interface AppendSummary {
  batches: number
  meanMs: number | undefined
  /** Estimated from the bucket counts, by linear interpolation inside the bucket holding the rank. */
  p50Ms: number | undefined
  p99Ms: number | undefined
}

/**
 * One unlabelled histogram of a /metrics text. Unlike the loop delay it is never reset, so a
 * step's observations are the difference of a scrape after it and one before (`appendDelta`).
 */
export function histogramOf (text: string, name: string): ScrapedHistogram | undefined {
  const upperBounds: number[] = []
  const cumulative: number[] = []
  for (const match of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} ([0-9.e+-]+)$`, 'gm'))) {
    upperBounds.push(match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]))
    cumulative.push(Number(match[2]))
  }
  const read = (suffix: string): number | undefined => {
    const value = new RegExp(`^${name}_${suffix} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]
    return value === undefined ? undefined : Number(value)
  }
  const sum = read('sum')
  const count = read('count')
  if (upperBounds.length === 0 || sum === undefined || count === undefined) return undefined
  return { upperBounds, cumulative, sum, count }
}

/** What was observed between two scrapes of the inbox-append histogram (seconds in, ms out). */
export function appendDelta (before: ScrapedHistogram | undefined, after: ScrapedHistogram | undefined): AppendSummary | undefined {
  if (before === undefined || after === undefined || before.upperBounds.length !== after.upperBounds.length) return undefined
  const batches = after.count - before.count
  const cumulative = after.cumulative.map((value, i) => value - before.cumulative[i]!)
  const ms = (seconds: number): number => Math.round(seconds * 1e6) / 1e3
  // Prometheus's histogram_quantile: the rank's bucket, linearly from its lower bound to its
  // upper one; a rank in +Inf gives the highest finite bound (the estimate can say no more).
  const quantile = (q: number): number | undefined => {
    if (batches <= 0) return undefined
    const rank = q * batches
    const i = cumulative.findIndex((value) => value >= rank)
    const upper = after.upperBounds[i] ?? Number.POSITIVE_INFINITY
    if (upper === Number.POSITIVE_INFINITY) return ms(after.upperBounds.at(-2) ?? 0)
    const lower = i === 0 ? 0 : after.upperBounds[i - 1]!
    const below = i === 0 ? 0 : cumulative[i - 1]!
    const inBucket = cumulative[i]! - below
    return ms(lower + (upper - lower) * (inBucket === 0 ? 1 : (rank - below) / inBucket))
  }
  return { batches, meanMs: batches > 0 ? ms((after.sum - before.sum) / batches) : undefined, p50Ms: quantile(0.5), p99Ms: quantile(0.99) }
}

/** For a step's log line: the inbox transactions over it, and what one took. */
export function describeAppends (appends: AppendSummary | undefined): string {
  if (appends === undefined) return 'inbox transactions not scraped'
  return `${appends.batches} inbox transactions (mean ${appends.meanMs ?? '–'} ms, p99 ≈ ${appends.p99Ms ?? '–'} ms)`
}

/**
 * The gateway's event-loop delay over a step, from its /metrics (prom-client's default metrics),
 * with the sampling interval taken out: Node's histogram records each timer period whole (10 ms
 * on an idle loop at the gateway's precision), so the step's smallest sample is subtracted.
 */
export interface LoopDelay { p50Ms: number, p99Ms: number, maxMs: number, samplingMs: number }

const TIMEOUT_MS = 5000

/**
 * prom-client resets its event-loop delay histogram at every scrape, so a scrape before a step
 * and one after it give the delay over that step: a loop that is busy, or blocked by long
 * synchronous work, shows here before it shows anywhere else.
 */
export async function scrapeLoopDelay (url: string): Promise<LoopDelay | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(TIMEOUT_MS) })).text()
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
  } catch {
    return undefined
  }
}

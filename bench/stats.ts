/** Percentiles of a latency sample, in milliseconds. */
export interface LatencySummary {
  count: number
  min: number
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** Log-spaced histogram: `counts[i]` holds values in [edges[i], edges[i + 1]). */
export interface Histogram {
  edgesMs: number[]
  counts: number[]
}

/** Nearest-rank percentile of an ascending sample; q in [0, 1]. */
export function percentile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export function summarize (values: ArrayLike<number>): LatencySummary | undefined {
  if (values.length === 0) return undefined
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const value of sorted) sum += value
  return {
    count: sorted.length,
    min: round(sorted[0]!),
    mean: round(sum / sorted.length),
    p50: round(percentile(sorted, 0.5)),
    p90: round(percentile(sorted, 0.9)),
    p99: round(percentile(sorted, 0.99)),
    p999: round(percentile(sorted, 0.999)),
    max: round(sorted[sorted.length - 1]!)
  }
}

/** Four buckets per doubling, from 1/16 ms up; the last bucket takes everything above. */
export function histogram (values: ArrayLike<number>, fromMs = 1 / 16, toMs = 16_384): Histogram {
  const edgesMs: number[] = []
  for (let edge = fromMs; edge <= toMs; edge *= 2 ** 0.25) edgesMs.push(round(edge))
  const counts = new Array<number>(edgesMs.length).fill(0)
  const perDoubling = 4
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!
    const bucket = value <= fromMs ? 0 : Math.floor(Math.log2(value / fromMs) * perDoubling)
    counts[Math.min(counts.length - 1, bucket)]!++
  }
  // Trailing empty buckets only lengthen the JSON.
  let last = counts.length - 1
  while (last > 0 && counts[last] === 0) last--
  return { edgesMs: edgesMs.slice(0, last + 2), counts: counts.slice(0, last + 1) }
}

/** Three decimals: microseconds are the finest grain any of these clocks is good for. */
export function round (value: number, decimals = 3): number {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}

import type { LatencySummary } from './stats.js'

/** One column of the plot: a rate and the latency percentiles measured at it. */
export interface LatencyPoint { rate: number, label: string, latency: LatencySummary }

/**
 * A target or a bound: a dashed line across the plot, or, with `rate`, a short one at that
 * rate's column (a target that holds at one rate only).
 */
export interface Guide { ms: number, text: string, rate?: number }

const WIDTH = 760
const HEIGHT = 440
const MARGIN = { top: 56, right: 150, bottom: 64, left: 64 }
const SERIES: Array<{ key: keyof LatencySummary, label: string, color: string }> = [
  { key: 'p50', label: 'p50', color: '#1f77b4' },
  { key: 'p90', label: 'p90', color: '#2ca02c' },
  { key: 'p99', label: 'p99', color: '#ff7f0e' },
  { key: 'p999', label: 'p99.9', color: '#d62728' },
  { key: 'max', label: 'max', color: '#7f7f7f' }
]

/**
 * Latency percentiles per rate, on a log scale, one column per rate: hand-written SVG with no
 * dependency.
 */
export function latencySvg (points: readonly LatencyPoint[], title: string, axes: { x: string, y: string }, guides: readonly Guide[]): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom
  const values = points.flatMap((point) => SERIES.map(({ key }) => Math.max(point.latency[key], 0.01)))
  const low = Math.floor(Math.log10(Math.min(0.1, ...values)))
  const high = Math.ceil(Math.log10(Math.max(...guides.map((guide) => guide.ms), ...values)))
  const y = (ms: number): number => MARGIN.top + plotH - (Math.log10(Math.max(ms, 10 ** low)) - low) / (high - low) * plotH
  const x = (i: number): number => MARGIN.left + (points.length <= 1 ? plotW / 2 : i / (points.length - 1) * plotW)
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, sans-serif" font-size="12">`)
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`)
  parts.push(`<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600">${escape(title)}</text>`)

  for (let decade = low; decade <= high; decade++) {
    for (const factor of [1, 2, 5]) {
      const ms = factor * 10 ** decade
      if (Math.log10(ms) > high) continue
      const at = y(ms).toFixed(1)
      const major = factor === 1
      parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${at}" y2="${at}" stroke="${major ? '#ccc' : '#eee'}"/>`)
      if (major || high - low <= 3) parts.push(`<text x="${MARGIN.left - 6}" y="${at}" dy="4" text-anchor="end" fill="#444">${label(ms)}</text>`)
    }
  }
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#222">${escape(axes.y)}</text>`)

  points.forEach((point, i) => {
    parts.push(`<text x="${x(i).toFixed(1)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle" fill="#444">${point.rate.toLocaleString('en-US')}</text>`)
  })
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 18}" text-anchor="middle" fill="#222">${escape(axes.x)}</text>`)

  for (const { ms, text, rate } of guides) {
    const at = y(ms).toFixed(1)
    const column = rate === undefined ? -1 : points.findIndex((point) => point.rate === rate)
    if (rate !== undefined && column < 0) continue
    if (column < 0) {
      parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${at}" y2="${at}" stroke="#999" stroke-dasharray="4 4"/>`)
      parts.push(`<text x="${MARGIN.left + plotW + 6}" y="${at}" dy="4" fill="#777" font-size="11">${escape(text)}</text>`)
      continue
    }
    const cx = x(column)
    parts.push(`<line x1="${(cx - 18).toFixed(1)}" x2="${(cx + 18).toFixed(1)}" y1="${at}" y2="${at}" stroke="#555" stroke-width="2" stroke-dasharray="3 2"/>`)
    parts.push(`<text x="${(cx + 22).toFixed(1)}" y="${at}" dy="4" fill="#555" font-size="11">${escape(text)}</text>`)
  }

  for (const { key, color } of SERIES) {
    const path = points.map((point, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(point.latency[key]).toFixed(1)}`).join(' ')
    if (points.length > 1) parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`)
    points.forEach((point, i) => {
      parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(point.latency[key]).toFixed(1)}" r="3" fill="${color}"><title>${escape(point.label)}: ${key} ${point.latency[key]} ms</title></circle>`)
    })
  }
  SERIES.forEach(({ label: name, color }, i) => {
    const left = MARGIN.left + i * 70
    parts.push(`<line x1="${left}" x2="${left + 20}" y1="38" y2="38" stroke="${color}" stroke-width="2"/>`)
    parts.push(`<text x="${left + 26}" y="38" dy="4">${name}</text>`)
  })
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

function label (ms: number): string {
  if (ms >= 1000) return `${ms / 1000} s`
  return `${Number(ms.toPrecision(2))}`
}

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

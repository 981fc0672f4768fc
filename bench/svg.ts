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
  const values = points.flatMap((point) => SERIES.map(({ key }) => Math.max(point.latency[key], 0.01)))
  const plot = new LogPlot(title, axes, [...guides.map((guide) => guide.ms), ...values])
  const x = (i: number): number => MARGIN.left + (points.length <= 1 ? plot.width / 2 : i / (points.length - 1) * plot.width)
  points.forEach((point, i) => plot.tick(x(i), point.rate.toLocaleString('en-US')))

  for (const { ms, text, rate } of guides) {
    const column = rate === undefined ? -1 : points.findIndex((point) => point.rate === rate)
    if (rate !== undefined && column < 0) continue
    if (column < 0) plot.guide(ms, text)
    else plot.mark(x(column), ms, text)
  }

  for (const { key, color } of SERIES) {
    plot.line(points.map((point, i) => [x(i), point.latency[key]]), color, (i) => `${points[i]!.label}: ${key} ${points[i]!.latency[key]} ms`)
  }
  SERIES.forEach(({ label: name, color }, i) => plot.legend(MARGIN.left + i * 70, 38, name, color))
  return plot.end()
}

/** A named line of p99 per rate (one setup, or a peer's published figures), dashed when it was not measured in this run. */
export interface RateSeries { label: string, color: string, dashed?: boolean, points: ReadonlyArray<{ rate: number, p99Ms: number }> }

/**
 * p99 against the rate for several setups on one plot: the x axis is the rate itself (linear),
 * so series measured at different rates line up.
 */
export function rateSvg (series: readonly RateSeries[], title: string, axes: { x: string, y: string }, guides: readonly Guide[]): string {
  const plot = new LogPlot(title, axes, [...guides.map((guide) => guide.ms), ...series.flatMap((one) => one.points.map((point) => Math.max(point.p99Ms, 0.01)))], LEGEND_ROWS * series.length)
  const top = Math.max(1000, ...series.flatMap((one) => one.points.map((point) => point.rate)))
  const step = 10 ** Math.floor(Math.log10(top)) / (top / 10 ** Math.floor(Math.log10(top)) > 4 ? 1 : 2)
  const last = Math.ceil(top / step) * step
  const x = (rate: number): number => MARGIN.left + rate / last * plot.width
  for (let rate = 0; rate <= last; rate += step) plot.tick(x(rate), rate.toLocaleString('en-US'))
  for (const { ms, text, rate } of guides) {
    if (rate === undefined) plot.guide(ms, text)
    else plot.mark(x(rate), ms, text)
  }
  // A series without points (a setup not run) keeps its legend row, which says so.
  series.forEach((one, i) => {
    plot.line(one.points.map((point) => [x(point.rate), point.p99Ms]), one.color, (k) => `${one.label}: ${one.points[k]!.rate.toLocaleString('en-US')}/s, p99 ${one.points[k]!.p99Ms} ms`, one.dashed === true)
    plot.legend(MARGIN.left, 38 + i * LEGEND_ROWS, one.label, one.color, one.dashed === true)
  })
  return plot.end()
}

const LEGEND_ROWS = 16

/** A log-scale latency axis over a plot area, and what is drawn on it, as SVG parts. */
class LogPlot {
  readonly parts: string[] = []
  readonly width = WIDTH - MARGIN.left - MARGIN.right
  readonly height: number
  readonly top: number
  readonly #low: number
  readonly #high: number

  /** `legendHeight`: room above the plot for a legend of that many pixels, beyond the default one row. */
  constructor (title: string, axes: { x: string, y: string }, values: readonly number[], legendHeight = 0) {
    this.top = MARGIN.top + Math.max(0, legendHeight - LEGEND_ROWS)
    const height = HEIGHT + this.top - MARGIN.top
    this.height = height - this.top - MARGIN.bottom
    this.#low = Math.floor(Math.log10(Math.min(0.1, ...values)))
    this.#high = Math.ceil(Math.log10(Math.max(...values)))
    const { parts } = this
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif" font-size="12">`)
    parts.push(`<rect width="${WIDTH}" height="${height}" fill="#fff"/>`)
    parts.push(`<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600">${escape(title)}</text>`)
    for (let decade = this.#low; decade <= this.#high; decade++) {
      for (const factor of [1, 2, 5]) {
        const ms = factor * 10 ** decade
        if (Math.log10(ms) > this.#high) continue
        const at = this.y(ms).toFixed(1)
        const major = factor === 1
        parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + this.width}" y1="${at}" y2="${at}" stroke="${major ? '#ccc' : '#eee'}"/>`)
        if (major || this.#high - this.#low <= 3) parts.push(`<text x="${MARGIN.left - 6}" y="${at}" dy="4" text-anchor="end" fill="#444">${label(ms)}</text>`)
      }
    }
    parts.push(`<text transform="translate(16 ${this.top + this.height / 2}) rotate(-90)" text-anchor="middle" fill="#222">${escape(axes.y)}</text>`)
    parts.push(`<text x="${MARGIN.left + this.width / 2}" y="${height - 18}" text-anchor="middle" fill="#222">${escape(axes.x)}</text>`)
  }

  readonly y = (ms: number): number => this.top + this.height - (Math.log10(Math.max(ms, 10 ** this.#low)) - this.#low) / (this.#high - this.#low) * this.height

  tick (x: number, text: string): void {
    this.parts.push(`<text x="${x.toFixed(1)}" y="${this.top + this.height + 18}" text-anchor="middle" fill="#444">${escape(text)}</text>`)
  }

  /** A dashed line across the plot. */
  guide (ms: number, text: string): void {
    const at = this.y(ms).toFixed(1)
    this.parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + this.width}" y1="${at}" y2="${at}" stroke="#999" stroke-dasharray="4 4"/>`)
    this.parts.push(`<text x="${MARGIN.left + this.width + 6}" y="${at}" dy="4" fill="#777" font-size="11">${escape(text)}</text>`)
  }

  /** A short line at one x (a target that holds at one rate only). */
  mark (x: number, ms: number, text: string): void {
    const at = this.y(ms).toFixed(1)
    this.parts.push(`<line x1="${(x - 18).toFixed(1)}" x2="${(x + 18).toFixed(1)}" y1="${at}" y2="${at}" stroke="#555" stroke-width="2" stroke-dasharray="3 2"/>`)
    this.parts.push(`<text x="${(x + 22).toFixed(1)}" y="${at}" dy="4" fill="#555" font-size="11">${escape(text)}</text>`)
  }

  /** Points joined by a line, each with a tooltip. */
  line (points: ReadonlyArray<[number, number]>, color: string, tooltip: (i: number) => string, dashed = false): void {
    if (points.length > 1) {
      const path = points.map(([x, ms], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${this.y(ms).toFixed(1)}`).join(' ')
      this.parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`)
    }
    points.forEach(([x, ms], i) => {
      this.parts.push(`<circle cx="${x.toFixed(1)}" cy="${this.y(ms).toFixed(1)}" r="3" fill="${color}"><title>${escape(tooltip(i))}</title></circle>`)
    })
  }

  legend (left: number, y: number, text: string, color: string, dashed = false): void {
    this.parts.push(`<line x1="${left}" x2="${left + 20}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`)
    this.parts.push(`<text x="${left + 26}" y="${y}" dy="4">${escape(text)}</text>`)
  }

  end (): string {
    this.parts.push(`<rect x="${MARGIN.left}" y="${this.top}" width="${this.width}" height="${this.height}" fill="none" stroke="#888"/>`)
    this.parts.push('</svg>')
    return this.parts.join('\n') + '\n'
  }
}

function label (ms: number): string {
  if (ms >= 1000) return `${ms / 1000} s`
  return `${Number(ms.toPrecision(2))}`
}

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

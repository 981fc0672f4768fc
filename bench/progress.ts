/**
 * The console: lasting lines for results, and one status line that rewrites itself on a
 * terminal (printed at most every few seconds when the output is a file or a pipe).
 */
export class Progress {
  readonly #tty = process.stdout.isTTY === true
  readonly #startedAt = performance.now()
  #statusShown = false
  #lastPlainStatus = 0

  log (line: string): void {
    this.#clearStatus()
    process.stdout.write(`${this.#stamp()} ${line}\n`)
  }

  status (line: string): void {
    if (this.#tty) {
      const width = process.stdout.columns ?? 120
      process.stdout.write(`\r\x1b[2K${`${this.#stamp()} ${line}`.slice(0, width - 1)}`)
      this.#statusShown = true
      return
    }
    const at = performance.now()
    if (at - this.#lastPlainStatus < 2000) return
    this.#lastPlainStatus = at
    process.stdout.write(`${this.#stamp()}   … ${line}\n`)
  }

  #clearStatus (): void {
    if (!this.#statusShown) return
    process.stdout.write('\r\x1b[2K')
    this.#statusShown = false
  }

  #stamp (): string {
    const seconds = Math.floor((performance.now() - this.#startedAt) / 1000)
    return `[${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}]`
  }
}

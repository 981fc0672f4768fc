const STEP_TIMEOUT_MS = 30_000

/**
 * Everything the run started, undone in reverse order: on success, on an error, on Ctrl-C.
 * Each step is bounded, so a stuck child cannot hold the bench open.
 */
export class Cleanup {
  readonly #steps: Array<{ name: string, undo: () => Promise<void> | void }> = []
  #running: Promise<void> | undefined

  add (name: string, undo: () => Promise<void> | void): void {
    this.#steps.push({ name, undo })
  }

  run (): Promise<void> {
    this.#running ??= this.#runAll()
    return this.#running
  }

  async #runAll (): Promise<void> {
    for (const { name, undo } of this.#steps.splice(0).reverse()) {
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          Promise.resolve().then(undo),
          new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timed out')), STEP_TIMEOUT_MS) })
        ])
      } catch (error) {
        process.stderr.write(`bench: cleanup of ${name} failed: ${(error as Error).message}\n`)
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

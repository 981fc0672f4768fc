/**
 * Lets a test wait for a condition on state that changes by events it does not await itself
 * (frames sent, messages delivered): the owner calls `wake()` after each change, and `until`
 * resolves once `done()` holds, or rejects after `timeoutMs` saying what it waited for.
 */
export class Waiters {
  #waiters: Array<() => void> = []

  wake (): void {
    for (const waiter of [...this.#waiters]) waiter()
  }

  async until (what: () => string, done: () => boolean, timeoutMs = 5000): Promise<void> {
    if (done()) return
    await new Promise<void>((resolve, reject) => {
      const forget = (): void => { this.#waiters = this.#waiters.filter((waiter) => waiter !== check) }
      const check = (): void => {
        if (!done()) return
        clearTimeout(timer)
        forget()
        resolve()
      }
      const timer = setTimeout(() => {
        forget()
        reject(new Error(`not within ${timeoutMs} ms: ${what()}`))
      }, timeoutMs)
      this.#waiters.push(check)
    })
  }
}

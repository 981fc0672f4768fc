import type { HubSocket } from '../../server/hub/socket.js'

export const OPEN = 1
export const CLOSING = 2
export const CLOSED = 3

/**
 * A socket that records what the connection and the hub do to it, like `ws` would see it.
 * `onPing` lets a test play the peer; `flushes = false` keeps the written callbacks pending.
 */
export class FakeSocket implements HubSocket {
  readyState = OPEN
  bufferedAmount = 0
  readonly sent: string[] = []
  readonly closes: Array<{ code: number, reason: string }> = []
  pings = 0
  terminations = 0
  onPing: (() => void) | undefined
  flushes = true
  readonly unflushed: Array<(error?: Error) => void> = []
  readonly terminated: Promise<void>
  #terminate: () => void = () => {}

  constructor () {
    this.terminated = new Promise((resolve) => { this.#terminate = resolve })
  }

  send (data: string, written?: (error?: Error) => void): void {
    this.sent.push(data)
    if (written === undefined) return
    if (this.flushes) written()
    else this.unflushed.push(written)
  }

  ping (): void {
    this.pings++
    this.onPing?.()
  }

  close (code: number, reason: string): void {
    this.closes.push({ code, reason })
    this.readyState = CLOSING
  }

  terminate (): void {
    this.terminations++
    this.readyState = CLOSED
    this.#terminate()
  }
}

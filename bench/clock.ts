/**
 * Milliseconds on the machine's monotonic clock. libuv's hrtime reads CLOCK_MONOTONIC, which all
 * processes on one machine share, so a send time taken in the load generator and a receive time
 * taken in a WebSocket client process subtract directly. (`performance.timeOrigin` is read from
 * the wall clock once per process, so two processes' origins can disagree by the wall clock's
 * steps between their starts.)
 */
export function now (): number {
  const [seconds, nanoseconds] = process.hrtime()
  return seconds * 1e3 + nanoseconds / 1e6
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `done` every `everyMs` until it holds or `timeoutMs` passed; returns whether it held. */
export async function waitUntil (done: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = now() + timeoutMs
  for (;;) {
    if (await done()) return true
    if (now() >= deadline) return false
    await sleep(Math.min(everyMs, Math.max(1, deadline - now())))
  }
}

/** A promise with its resolve and reject, for a test that settles it by hand (Promise.withResolvers, not in Node 20). */
export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (error: unknown) => void
}

export function deferred<T = void> (): Deferred<T> {
  const settle: Partial<Deferred<T>> = {}
  const promise = new Promise<T>((resolve, reject) => { Object.assign(settle, { resolve, reject }) })
  return { promise, resolve: settle.resolve!, reject: settle.reject! }
}

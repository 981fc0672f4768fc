/** Whether this run is CI's, where every test must run: a missing server is a failure, not a skip. */
export function isCI (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false'
}

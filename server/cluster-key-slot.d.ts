// cluster-key-slot ships no types at 1.1.1, the version ioredis pins (and package.json too, so both
// compute slots with the same copy).
declare module 'cluster-key-slot' {
  /** The Redis Cluster slot (0–16383) of a key, honouring `{hash tags}`. */
  export default function calculateSlot (key: string | Buffer): number
}

/** Full-jitter exponential backoff: random(0, min(cap, base * 2^attempt)). */
export function backoff (attempt: number, base = 500, cap = 15_000): number {
  return Math.random() * Math.min(cap, base * 2 ** attempt)
}

import { isFree } from '../../local/ports.js'

/**
 * A port P such that `count` ports from P are free, and as many from P + 100, P + 200… for `runs`
 * runs in all: below the range the OS hands out, so no free port it picks meanwhile lands on them.
 */
export async function freeRuns (count: number, runs = 1): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * 10_000)
    const ports = Array.from({ length: runs }, (_, run) => Array.from({ length: count }, (_, i) => first + 100 * run + i)).flat()
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return first
  }
  throw new Error(`no ${runs} runs of ${count} free ports found`)
}

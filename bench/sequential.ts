// `npx tsx bench/sequential.ts [count] [warm-up]`: POST → frame latency of follows sent one at a
// time (each waits for the previous frame) against a running gateway (GATEWAY_URL, default
// http://127.0.0.1:3000, dev mode with the default users, started with RATE_LIMIT_PER_USER=0 and
// RATE_LIMIT_PER_IP=0): the idle-machine figure, without load.
import { WebSocket } from 'ws'
import { summarize } from './stats.js'

const url = process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000'
const count = Number(process.argv[2] ?? 1000)
const warmUp = Number(process.argv[3] ?? 2000)

async function signIn (userId: string): Promise<string> {
  const response = await fetch(`${url}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) })
  if (response.status !== 201) throw new Error(`sign-in answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { token: string }).token
}

const [emma, bruno] = [await signIn('1'), await signIn('2')]
const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?token=${emma}`)
let arrived: ((at: number) => void) | undefined
socket.on('message', (data) => {
  if ((JSON.parse(data.toString()) as { type: string }).type === 'notification') arrived?.(performance.now())
})
await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })

const latencies: number[] = []
for (let i = 0; i < warmUp + count; i++) {
  const frame = new Promise<number>((resolve) => { arrived = resolve })
  const started = performance.now()
  const response = await fetch(`${url}/api/follows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bruno}` },
    body: '{"followeeId":"1"}'
  })
  if (response.status !== 202) throw new Error(`follow answered ${response.status}: ${await response.text()}`)
  await response.arrayBuffer()
  const frameAt = await frame
  if (i >= warmUp) latencies.push(frameAt - started)
}
socket.close()
console.log(JSON.stringify({ url, count, warmUp, postToFrameMs: summarize(latencies) }))

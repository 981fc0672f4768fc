import type { IncomingMessage } from 'node:http'
import { WebSocket, type ClientOptions } from 'ws'
import type { Frame } from './clients.js'
import type { TestContext } from './gateway.js'

export interface ErrorBody { statusCode: number, error: string, message: string, code: string }

export interface Feed {
  socket: WebSocket
  frames: Frame[]
  closed: Promise<{ code: number, reason: string }>
  /** Resolves with the first frame (`ready`), or rejects if the socket closes first. */
  ready: Promise<Frame>
}
export type Upgrade = ({ opened: true } & Feed) | { opened: false, status: number, body: ErrorBody }

/** Opens /ws with a real client (offering `protocols`): either a socket (101), or the HTTP answer that refused it. */
export function upgrade (t: TestContext, url: string, path: string, options: ClientOptions & { protocols?: string[] } = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const { protocols = [], ...clientOptions } = options
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, protocols, clientOptions)
    t.teardown(() => socket.terminate())
    const frames: Frame[] = []
    const closed = new Promise<{ code: number, reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })))
    const ready = new Promise<Frame>((resolve, reject) => {
      socket.once('message', (data) => resolve(JSON.parse(String(data)) as Frame))
      void closed.then(({ code }) => reject(new Error(`closed with ${code} before any frame`)))
    })
    ready.catch(() => {})
    socket.on('message', (data) => frames.push(JSON.parse(String(data)) as Frame))
    socket.once('open', () => resolve({ opened: true, socket, frames, closed, ready }))
    socket.once('unexpected-response', (request, response: IncomingMessage) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        request.destroy()
        resolve({ opened: false, status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as ErrorBody })
      })
    })
    socket.once('error', reject)
  })
}

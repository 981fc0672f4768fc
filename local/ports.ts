import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'

/** Whether nothing listens on `port` of 127.0.0.1 now. */
export async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  try {
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    return true
  } catch {
    return false
  } finally {
    server.close()
  }
}

/** `count` distinct free ports on 127.0.0.1. */
export async function freePorts (count: number): Promise<number[]> {
  // All listen at once, so the ports differ from each other.
  const servers = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'))
  await Promise.all(servers.map(async server => await once(server, 'listening')))
  const ports = servers.map(server => (server.address() as AddressInfo).port)
  await Promise.all(servers.map(async server => await new Promise(resolve => server.close(resolve))))
  return ports
}

import { isIPv6 } from 'node:net'

/**
 * The key per-address limits (rate limit, sockets) count a client under: its IPv4 address, or the
 * /64 of its IPv6 one. An IPv6 host is usually handed a whole /64 and may pick any address in it,
 * so counting single addresses would give it 2^64 budgets.
 */
export function addressKey (ip: string): string {
  if (!isIPv6(ip)) return ip
  const bare = ip.split('%')[0] ?? ip
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(bare)
  if (mapped !== null) return mapped[1]!
  const [head = '', tail] = bare.split('::')
  const groups = head === '' ? [] : head.split(':')
  if (tail !== undefined) {
    // An embedded IPv4 address (`64:ff9b::192.0.2.1`) stands for two groups.
    const tailGroups = tail === '' ? 0 : tail.split(':').reduce((count, group) => count + (group.includes('.') ? 2 : 1), 0)
    groups.push(...Array.from({ length: 8 - groups.length - tailGroups }, () => '0'))
  }
  const prefix = groups.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16))
  return `${prefix.join(':')}::/64`
}

import t from 'tap'
import { addressKey } from '../../server/routes/client-address.js'

t.test('an IPv4 address is its own key', async (t) => {
  t.equal(addressKey('192.0.2.7'), '192.0.2.7')
  t.equal(addressKey('127.0.0.1'), '127.0.0.1')
})

t.test('an IPv6 address counts under its /64, however it is written', async (t) => {
  const key = '2001:db8:aa:bb::/64'
  for (const ip of ['2001:db8:aa:bb::1', '2001:db8:aa:bb:ffff:ffff:ffff:ffff', '2001:0DB8:00aa:00bb:1:2:3:4', '2001:db8:aa:bb:1::', '2001:db8:aa:bb::9%eth0']) {
    t.equal(addressKey(ip), key, ip)
  }
  t.not(addressKey('2001:db8:aa:bc::1'), key, 'the next /64 is another client')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64', ':: inside the prefix')
  t.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64', 'an embedded IPv4 address in the interface half')
})

t.test('an IPv4-mapped IPv6 address is the IPv4 client it maps', async (t) => {
  t.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7')
  t.equal(addressKey('::FFFF:10.0.0.1'), '10.0.0.1')
})

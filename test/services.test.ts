import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { loadConfig } from '../server/config.js'
import { createServices } from '../server/services.js'
import { eventually } from './helpers/eventually.js'
import { tempDir, testEnv } from './helpers/gateway.js'
import { quiet } from './helpers/quiet-log.js'
import { startRedis } from './helpers/redis.js'

const AUTH_SECRET = 'a-secret-of-at-least-thirty-two-characters'

const redis = await startRedis(t)
if (redis !== undefined) {
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  /** This gateway's Redis connections: the fan-out's publisher and subscriber, and the commands connection. */
  const connections = async (): Promise<number> => (await client.client('LIST') as string).split('\n').filter((line) => line.includes('name=kafka-notify:')).length

  t.test('a start that fails once the inbox and the fan-out are open closes them before it rejects', async (t) => {
    // A single broker cannot hold two replicas: the Kafka bus fails to start, after everything else opened.
    const config = loadConfig(testEnv(tempDir(t), { REDIS_URL: redis.url, AUTH_SECRET, KAFKA_REPLICATION_FACTOR: '2', KAFKA_MIN_INSYNC_REPLICAS: '1' }))
    await t.rejects(createServices(config, quiet))
    t.equal(await eventually('the Redis connections closed', connections, (count) => count === 0), 0, 'no Redis connection of the gateway is left open')
  })

  t.test('KAFKA_BROKERS unset, and no bus given: refused before anything is opened', async (t) => {
    const dataDir = tempDir(t)
    const config = loadConfig({ DATA_DIR: dataDir, REDIS_URL: redis.url, AUTH_SECRET, LOG_LEVEL: 'silent' })
    await t.rejects(createServices(config, quiet), { message: /KAFKA_BROKERS is not set/ })
    t.notOk(existsSync(join(dataDir, 'inbox.sqlite')), 'no inbox was opened')
    t.equal(await connections(), 0, 'no Redis connection was opened')
  })
}

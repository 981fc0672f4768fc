import t from 'tap'
import { readFileSync } from 'node:fs'
import { ConfigError, configWarnings, loadConfig, PUBLIC_SECRETS } from '../server/config.js'

const SECRET = 'a-secret-of-at-least-thirty-two-characters'

/** What loadConfig throws for `env` (undefined when it accepts it). */
function refusal (env: Record<string, string>): unknown {
  try {
    loadConfig(env)
  } catch (error) {
    return error
  }
  return undefined
}

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.same(config, {
    host: '127.0.0.1',
    port: 3000,
    allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
    logLevel: 'info',
    logFormat: undefined,
    dataDir: './data',
    usersFile: undefined,
    kafka: {
      brokers: undefined,
      clientId: 'kafka-notify',
      topic: 'notifications',
      dlqTopic: 'notifications.dlq',
      partitions: 6,
      replicationFactor: 1,
      minInsyncReplicas: 1,
      groupId: 'notify-gateway',
      sendTimeoutMs: 5000,
      localPort: 9092,
      localControllerPort: 9093
    },
    auth: {
      mode: 'dev',
      secret: undefined,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
      anyAudience: false,
      sessionTtlSeconds: 3600
    },
    trustProxy: false,
    rateLimit: { perUser: 120, perIp: 600, perService: 60000 },
    ws: {
      heartbeatMs: 30000,
      maxBufferedBytes: 1048576,
      maxConnectionsPerUser: 20,
      maxConnectionsPerIp: 500
    },
    allowedOrigins: undefined,
    corsCredentials: false,
    inbox: { maxPerUser: 1000, maxAgeDays: 30 },
    groupWindowMs: 86_400_000,
    databasePoolSize: 10,
    redisUrl: undefined,
    redisCluster: false,
    compatTutorial: false,
    shutdownGraceMs: 10000
  })
})

t.test('an empty variable counts as unset', async (t) => {
  const config = loadConfig({ PORT: '', KAFKA_BROKERS: '', COMPAT_TUTORIAL: '' })
  t.equal(config.port, 3000)
  t.equal(config.kafka.brokers, undefined)
  t.equal(config.compatTutorial, false)
})

t.test('the environment is read from process.env by default', async (t) => {
  const before = process.env.KAFKA_CLIENT_ID
  process.env.KAFKA_CLIENT_ID = 'from-process-env'
  t.teardown(() => {
    if (before === undefined) delete process.env.KAFKA_CLIENT_ID
    else process.env.KAFKA_CLIENT_ID = before
  })
  t.equal(loadConfig().kafka.clientId, 'from-process-env')
})

t.test('good values are coerced to their types', async (t) => {
  const config = loadConfig({
    HOST: '0.0.0.0',
    PORT: '8080',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    DATA_DIR: '/var/lib/notify',
    USERS_FILE: '/etc/notify/users.json',
    KAFKA_BROKERS: 'kafka-1:9092,kafka-2:9093',
    KAFKA_CLIENT_ID: 'gw',
    KAFKA_TOPIC: 'events.follow',
    KAFKA_DLQ_TOPIC: 'events.follow.dlq',
    KAFKA_PARTITIONS: '12',
    KAFKA_REPLICATION_FACTOR: '3',
    KAFKA_GROUP_ID: 'group-a',
    KAFKA_SEND_TIMEOUT_MS: '2500',
    LOCAL_KAFKA_PORT: '19092',
    LOCAL_KAFKA_CONTROLLER_PORT: '19093',
    AUTH_MODE: 'jwt',
    AUTH_SECRET: SECRET,
    AUTH_JWKS_URL: 'https://id.example.com/.well-known/jwks.json',
    AUTH_ISSUER: 'https://id.example.com/',
    AUTH_AUDIENCE: 'notify',
    SESSION_TTL_SECONDS: '600',
    ALLOWED_HOSTS: 'notify.example.com',
    WS_HEARTBEAT_MS: '15000',
    WS_MAX_BUFFERED_BYTES: '65536',
    INBOX_MAX_PER_USER: '200',
    INBOX_MAX_AGE_DAYS: '0.5',
    SHUTDOWN_GRACE_MS: '3000'
  })
  t.equal(config.host, '0.0.0.0')
  t.equal(config.port, 8080)
  t.equal(config.logLevel, 'warn')
  t.equal(config.logFormat, 'json')
  t.equal(config.dataDir, '/var/lib/notify')
  t.equal(config.usersFile, '/etc/notify/users.json')
  t.same(config.kafka, {
    brokers: ['kafka-1:9092', 'kafka-2:9093'],
    clientId: 'gw',
    topic: 'events.follow',
    dlqTopic: 'events.follow.dlq',
    partitions: 12,
    replicationFactor: 3,
    minInsyncReplicas: 2,
    groupId: 'group-a',
    sendTimeoutMs: 2500,
    localPort: 19092,
    localControllerPort: 19093
  })
  t.same(config.auth, {
    mode: 'jwt',
    secret: SECRET,
    jwksUrl: 'https://id.example.com/.well-known/jwks.json',
    issuer: 'https://id.example.com/',
    audience: 'notify',
    anyAudience: false,
    sessionTtlSeconds: 600
  })
  t.same(config.allowedHosts, ['localhost', '127.0.0.1', '[::1]', '0.0.0.0', 'notify.example.com'])
  t.match(config.ws, { heartbeatMs: 15000, maxBufferedBytes: 65536 })
  t.same(config.inbox, { maxPerUser: 200, maxAgeDays: 0.5 })
  t.equal(config.shutdownGraceMs, 3000)
  t.equal(typeof config.port, 'number')
  t.equal(typeof config.kafka.partitions, 'number')
  t.equal(typeof config.auth.anyAudience, 'boolean')
})

t.test('KAFKA_MIN_INSYNC_REPLICAS defaults to two copies where there can be two, and can be set up to the replication factor', async (t) => {
  t.equal(loadConfig({ KAFKA_REPLICATION_FACTOR: '1' }).kafka.minInsyncReplicas, 1)
  t.equal(loadConfig({ KAFKA_REPLICATION_FACTOR: '2' }).kafka.minInsyncReplicas, 2)
  t.equal(loadConfig({ KAFKA_REPLICATION_FACTOR: '5' }).kafka.minInsyncReplicas, 2)
  t.equal(loadConfig({ KAFKA_REPLICATION_FACTOR: '5', KAFKA_MIN_INSYNC_REPLICAS: '3' }).kafka.minInsyncReplicas, 3)
  t.equal(loadConfig({ KAFKA_REPLICATION_FACTOR: '3', KAFKA_MIN_INSYNC_REPLICAS: '3' }).kafka.minInsyncReplicas, 3)
})

t.test('COMPAT_TUTORIAL accepts the usual spellings of a flag', async (t) => {
  for (const value of ['1', 'true', 'TRUE', 'yes', 'on']) {
    t.equal(loadConfig({ COMPAT_TUTORIAL: value }).compatTutorial, true, value)
  }
  for (const value of ['0', 'false', 'False', 'no', 'off']) {
    t.equal(loadConfig({ COMPAT_TUTORIAL: value }).compatTutorial, false, value)
  }
})

t.test('a single broker, and the jwt mode with only a JWKS URL, are accepted', async (t) => {
  t.same(loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092' }).kafka.brokers, ['127.0.0.1:9092'])
  const config = loadConfig({ AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'http://127.0.0.1:8080/jwks', AUTH_AUDIENCE: 'kafka-notify' })
  t.equal(config.auth.mode, 'jwt')
  t.equal(config.auth.secret, undefined)
})

t.test('bad values are refused with a ConfigError naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ KAFKA_PARTITIONS: '0' }, 'KAFKA_PARTITIONS'],
    [{ KAFKA_PARTITIONS: '-3' }, 'KAFKA_PARTITIONS'],
    [{ KAFKA_REPLICATION_FACTOR: 'three' }, 'KAFKA_REPLICATION_FACTOR'],
    [{ AUTH_MODE: 'x' }, 'AUTH_MODE'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ LOG_FORMAT: 'text' }, 'LOG_FORMAT'],
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'localhost:port' }, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'a:9092,,b:9092' }, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'a:9092, b:9092' }, 'KAFKA_BROKERS'],
    [{ KAFKA_TOPIC: 'bad topic' }, 'KAFKA_TOPIC'],
    [{ COMPAT_TUTORIAL: 'maybe' }, 'COMPAT_TUTORIAL'],
    [{ AUTH_MODE: 'jwt' }, 'AUTH_MODE'],
    [{ AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'ftp://id.example.com/jwks', AUTH_AUDIENCE: 'kafka-notify' }, 'AUTH_JWKS_URL'],
    [{ AUTH_ALLOW_ANY_AUDIENCE: 'maybe' }, 'AUTH_ALLOW_ANY_AUDIENCE'],
    [{ ALLOWED_HOSTS: 'notify.example.com/path' }, 'ALLOWED_HOSTS'],
    [{ ALLOWED_HOSTS: 'a.example.com,,b.example.com' }, 'ALLOWED_HOSTS'],
    [{ KAFKA_TOPIC: 'events', KAFKA_DLQ_TOPIC: 'events' }, 'KAFKA_DLQ_TOPIC'],
    [{ KAFKA_DLQ_TOPIC: 'notifications' }, 'KAFKA_DLQ_TOPIC'],
    [{ AUTH_SECRET: 'too-short' }, 'AUTH_SECRET'],
    [{ AUTH_MODE: 'jwt', AUTH_SECRET: 'too-short', AUTH_AUDIENCE: 'kafka-notify' }, 'AUTH_SECRET'],
    [{ SESSION_TTL_SECONDS: '5' }, 'SESSION_TTL_SECONDS'],
    [{ WS_HEARTBEAT_MS: '10' }, 'WS_HEARTBEAT_MS'],
    [{ INBOX_MAX_AGE_DAYS: '0' }, 'INBOX_MAX_AGE_DAYS'],
    [{ KAFKA_MIN_INSYNC_REPLICAS: '0' }, 'KAFKA_MIN_INSYNC_REPLICAS'],
    [{ KAFKA_MIN_INSYNC_REPLICAS: '2' }, 'KAFKA_MIN_INSYNC_REPLICAS'],
    [{ KAFKA_REPLICATION_FACTOR: '3', KAFKA_MIN_INSYNC_REPLICAS: '4' }, 'KAFKA_MIN_INSYNC_REPLICAS'],
    [{ REDIS_URL: 'http://127.0.0.1:6379', AUTH_SECRET: SECRET }, 'REDIS_URL'],
    [{ REDIS_URL: '127.0.0.1:6379', AUTH_SECRET: SECRET }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis://', AUTH_SECRET: SECRET }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis://host name:6379', AUTH_SECRET: SECRET }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis://127.0.0.1:6379' }, 'REDIS_URL'],
    [{ DATABASE_URL: 'mysql://db/notify' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://' }, 'DATABASE_URL'],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE']
  ]
  for (const [env, variable] of cases) {
    t.test(JSON.stringify(env), async (t) => {
      const error = refusal(env)
      t.type(error, ConfigError, 'throws a ConfigError')
      t.match((error as Error | undefined)?.message, variable, `the message names ${variable}`)
    })
  }
})

t.test('every bad variable is named at once, with the value it got', async (t) => {
  const thrown = refusal({ PORT: 'abc', KAFKA_PARTITIONS: '0' })
  t.type(thrown, ConfigError)
  const message = (thrown as Error).message
  t.match(message, /PORT: .*\(got "abc"\)/)
  t.match(message, /KAFKA_PARTITIONS: .*\(got "0"\)/)
})

t.test('a refused AUTH_SECRET is not echoed into the error (it ends up in logs)', async (t) => {
  const secret = 'hunter2-but-a-little-longer'
  const error = refusal({ AUTH_SECRET: secret })
  t.type(error, ConfigError)
  t.match((error as Error | undefined)?.message, 'AUTH_SECRET')
  t.notMatch((error as Error | undefined)?.message, secret)
})

t.test('REDIS_URL takes a redis:// or rediss:// URL, off by default', async (t) => {
  t.equal(loadConfig({}).redisUrl, undefined, 'unset: one gateway, in-process fan-out')
  for (const url of ['redis://127.0.0.1:6379', 'rediss://:p%40ss@redis.internal:6380/2', 'redis://redis', 'redis://user:pw@10.0.0.5:6379/0?family=4']) {
    t.equal(loadConfig({ REDIS_URL: url, AUTH_SECRET: SECRET }).redisUrl, url, url)
  }
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'https://id.example.com/jwks', AUTH_AUDIENCE: 'kafka-notify' }).redisUrl,
    'redis://127.0.0.1:6379', 'jwt mode needs no AUTH_SECRET: the identity service signs for every gateway')
})

t.test('REDIS_CLUSTER (a flag, off by default) takes REDIS_URL as comma-separated seed nodes; without it, one URL only', async (t) => {
  const message = (env: Record<string, string>): string | undefined => (refusal(env) as Error | undefined)?.message
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', AUTH_SECRET: SECRET }).redisCluster, false)
  const seeds = 'redis://a:6379,rediss://:p%40ss@b.internal:6380,redis://10.0.0.7'
  for (const value of ['1', 'true', 'on']) {
    const config = loadConfig({ REDIS_URL: seeds, REDIS_CLUSTER: value, AUTH_SECRET: SECRET })
    t.same([config.redisCluster, config.redisUrl], [true, seeds], value)
  }
  t.equal(loadConfig({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER: '1', AUTH_SECRET: SECRET }).redisCluster, true, 'one seed is enough')
  t.match(message({ REDIS_URL: seeds, AUTH_SECRET: SECRET }), /REDIS_URL lists several servers.*REDIS_CLUSTER=1/)
  t.match(message({ REDIS_CLUSTER: '1' }), /REDIS_CLUSTER is on without REDIS_URL/)
  t.match(message({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER: 'maybe', AUTH_SECRET: SECRET }), /REDIS_CLUSTER: must be 1 or 0/)
  for (const bad of ['redis://a:6379,', 'redis://a:6379,,redis://b:6379', 'redis://a:6379, redis://b:6379', 'redis://a:6379,b:6379']) {
    t.match(message({ REDIS_URL: bad, REDIS_CLUSTER: '1', AUTH_SECRET: SECRET }), /REDIS_URL/, bad)
    t.notMatch(message({ REDIS_URL: bad, REDIS_CLUSTER: '1', AUTH_SECRET: SECRET }), /got/, 'the value is not echoed')
  }
})

t.test('REDIS_URL in dev mode without AUTH_SECRET is refused, saying why', async (t) => {
  const error = refusal({ REDIS_URL: 'redis://127.0.0.1:6379' })
  t.type(error, ConfigError)
  t.match((error as Error).message, /REDIS_URL .*AUTH_MODE=dev.*AUTH_SECRET .*same on every gateway.*signed by one gateway must verify on the others/)
})

t.test('a refused REDIS_URL is not echoed into the error (its password would end up in logs)', async (t) => {
  const error = refusal({ REDIS_URL: 'http://:hunter2@redis:6379', AUTH_SECRET: SECRET })
  t.match((error as Error | undefined)?.message, 'REDIS_URL')
  t.notMatch((error as Error | undefined)?.message, 'hunter2')
})

t.test('DATABASE_URL takes a postgres:// or postgresql:// URL, off by default, and is never echoed', async (t) => {
  t.equal(loadConfig({}).databaseUrl, undefined, 'unset: the SQLite inbox under DATA_DIR')
  for (const url of ['postgres://notify:pw@db:5432/notify', 'postgresql://127.0.0.1/notify?sslmode=require']) {
    t.equal(loadConfig({ DATABASE_URL: url }).databaseUrl, url, url)
  }
  const error = refusal({ DATABASE_URL: 'mysql://root:hunter2@db/notify' })
  t.match((error as Error | undefined)?.message, 'DATABASE_URL')
  t.notMatch((error as Error | undefined)?.message, 'hunter2')
})

t.test('TRUST_PROXY takes the proxies\' addresses or CIDRs, nothing looser', async (t) => {
  t.equal(loadConfig({}).trustProxy, false, 'unset: the client is the TCP peer')
  t.equal(loadConfig({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1' }).trustProxy, '127.0.0.1,10.0.0.0/8,::1')
  t.equal(loadConfig({ TRUST_PROXY: 'loopback' }).trustProxy, 'loopback')
  for (const value of ['1', 'true', '*', '10.0.0.1; rm -rf']) {
    t.throws(() => loadConfig({ TRUST_PROXY: value }), { name: 'ConfigError', message: /TRUST_PROXY/ }, value)
  }
})

const JWT = { AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'https://id.example.com/.well-known/jwks.json', AUTH_AUDIENCE: 'kafka-notify' }

t.test('jwt mode without AUTH_AUDIENCE is refused, saying why, unless AUTH_ALLOW_ANY_AUDIENCE=1', async (t) => {
  const { AUTH_AUDIENCE: _, ...withoutAudience } = JWT
  const error = refusal(withoutAudience)
  t.type(error, ConfigError)
  t.match((error as Error).message, /AUTH_MODE=jwt needs AUTH_AUDIENCE.*any other application is accepted here.*AUTH_ALLOW_ANY_AUDIENCE=1/)
  t.match(refusal({ AUTH_MODE: 'jwt', AUTH_SECRET: SECRET }), { message: /AUTH_AUDIENCE/ }, 'with an HS256 secret too')
  const anyAudience = loadConfig({ ...withoutAudience, AUTH_ALLOW_ANY_AUDIENCE: '1' })
  t.same([anyAudience.auth.audience, anyAudience.auth.anyAudience], [undefined, true])
  t.equal(loadConfig({ AUTH_MODE: 'dev' }).auth.audience, undefined, 'dev mode signs its own tokens: no audience needed')
})

t.test('AUTH_JWKS_URL over plain http:// is refused, except on a loopback address', async (t) => {
  for (const url of ['http://id.example.com/jwks.json', 'http://10.0.0.5:8080/jwks', 'http://0.0.0.0/jwks', 'http://127.example.com/jwks']) {
    t.match(refusal({ ...JWT, AUTH_JWKS_URL: url }), { name: 'ConfigError', message: /AUTH_JWKS_URL must be https:\/\/.*loopback/ }, url)
  }
  for (const url of ['https://id.example.com/jwks.json', 'http://127.0.0.1:8080/jwks', 'http://127.3.2.1/jwks', 'http://localhost:8080/jwks', 'http://[::1]:8080/jwks']) {
    t.equal(loadConfig({ ...JWT, AUTH_JWKS_URL: url }).auth.jwksUrl, url, url)
  }
})

t.test('jwt mode refuses the public AUTH_SECRET default of docker-compose.yml; dev mode (the compose cluster) takes it', async (t) => {
  const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')
  const published = /AUTH_SECRET: \$\{AUTH_SECRET:-([^}]+)\}/.exec(compose)?.[1]
  t.ok(published !== undefined && PUBLIC_SECRETS.includes(published), 'docker-compose.yml\'s default is in the list jwt mode refuses')
  for (const secret of PUBLIC_SECRETS) {
    t.match(refusal({ AUTH_MODE: 'jwt', AUTH_SECRET: secret, AUTH_AUDIENCE: 'kafka-notify' }), { name: 'ConfigError', message: /AUTH_SECRET is the public default of docker-compose\.yml/ })
    t.notMatch((refusal({ AUTH_MODE: 'jwt', AUTH_SECRET: secret, AUTH_AUDIENCE: 'kafka-notify' }) as Error).message, secret, 'and does not echo it')
    t.equal(loadConfig({ AUTH_MODE: 'dev', AUTH_SECRET: secret }).auth.secret, secret)
  }
})

t.test('the compose cluster\'s gateways pass the configuration check, with the documented default secret', async (t) => {
  const env = composeGatewayEnvironment(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'))
  t.match(env, { HOST: '0.0.0.0', REDIS_URL: String, DATABASE_URL: String, AUTH_SECRET: PUBLIC_SECRETS[0] })
  const config = loadConfig(env)
  t.equal(config.auth.mode, 'dev')
  t.same(configWarnings(config).filter((warning) => !warning.startsWith('AUTH_MODE=dev')), [], 'nothing to warn about but dev mode itself')
})

t.test('configWarnings: a JWKS and a secret both set, dev mode off loopback, the tutorial\'s routes off loopback', async (t) => {
  t.same(configWarnings(loadConfig(JWT)), [], 'nothing in a plain jwt set-up')
  t.match(configWarnings(loadConfig({ ...JWT, AUTH_SECRET: SECRET })), [/AUTH_SECRET and AUTH_JWKS_URL are both set/])
  t.match(configWarnings(loadConfig({})), [/AUTH_MODE=dev: .*Bound to loopback only/])
  t.match(configWarnings(loadConfig({ HOST: '0.0.0.0' })), [/AUTH_MODE=dev: .*NOT a loopback address/])
  t.equal(configWarnings(loadConfig({ COMPAT_TUTORIAL: '1' })).length, 1, 'the tutorial on loopback: only the dev-mode line')
  t.match(configWarnings(loadConfig({ HOST: '0.0.0.0', COMPAT_TUTORIAL: '1' })), [/AUTH_MODE=dev/, /COMPAT_TUTORIAL=1 on 0\.0\.0\.0:3000, NOT a loopback address: .*take no token/])
})

t.test('COMPAT_TUTORIAL=1 in jwt mode on a non-loopback HOST refuses to start; on loopback it starts', async (t) => {
  for (const host of ['0.0.0.0', '10.0.0.5', '::', 'notify.example.com']) {
    t.match(refusal({ ...JWT, COMPAT_TUTORIAL: '1', HOST: host }), { name: 'ConfigError', message: /COMPAT_TUTORIAL=1 with AUTH_MODE=jwt on HOST=.*not a loopback address.*take no token/ }, host)
  }
  for (const host of ['127.0.0.1', '::1', 'localhost']) {
    t.equal(loadConfig({ ...JWT, COMPAT_TUTORIAL: '1', HOST: host }).compatTutorial, true, host)
  }
})

t.test('ALLOWED_HOSTS: dev mode answers only this machine\'s names and HOST unless extended; jwt mode any host unless set', async (t) => {
  t.same(loadConfig({}).allowedHosts, ['localhost', '127.0.0.1', '[::1]'])
  t.same(loadConfig({ HOST: '::1' }).allowedHosts, ['localhost', '127.0.0.1', '[::1]'])
  t.same(loadConfig({ HOST: 'my-laptop.lan', ALLOWED_HOSTS: 'Notify.Example.com, [fd00::5]' }).allowedHosts,
    ['localhost', '127.0.0.1', '[::1]', 'my-laptop.lan', 'notify.example.com', '[fd00::5]'])
  t.equal(loadConfig({ ALLOWED_HOSTS: '*' }).allowedHosts, undefined, '* turns the check off')
  t.equal(loadConfig(JWT).allowedHosts, undefined)
  t.same(loadConfig({ ...JWT, ALLOWED_HOSTS: 'notify.example.com' }).allowedHosts, ['localhost', '127.0.0.1', '[::1]', 'notify.example.com'])
})

/** The environment docker-compose.yml gives gateway-1: the shared block, `${VAR:-default}` resolved to its default, and its own lines. */
function composeGatewayEnvironment (compose: string): Record<string, string> {
  const block = (start: string, indent: string): Record<string, string> => {
    const lines = compose.slice(compose.indexOf(start) + start.length).split('\n').slice(1)
    const env: Record<string, string> = {}
    for (const line of lines) {
      if (!line.startsWith(indent) || line.trim() === '') break
      const match = new RegExp(`^${indent}([A-Z_]+): (.*)$`).exec(line)
      if (match !== null) env[match[1]!] = match[2]!.replace(/^\$\{[A-Z_]+:-(.*)\}$/, '$1')
    }
    return env
  }
  return { ...block('x-gateway-environment: &gateway-environment', '  '), ...block('  gateway-1:', '      ') }
}

t.test('ALLOWED_ORIGINS: one list of browser origins for the API and /ws; WS_ALLOWED_ORIGINS is its old name', async (t) => {
  t.equal(loadConfig({}).allowedOrigins, undefined, 'unset: the gateway\'s own origin only')
  t.same(loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com, http://127.0.0.1:8080,capacitor://localhost' }).allowedOrigins,
    ['https://app.example.com', 'http://127.0.0.1:8080', 'capacitor://localhost'])
  t.same(loadConfig({ ALLOWED_ORIGINS: '*' }).allowedOrigins, ['*'])
  t.same(loadConfig({ WS_ALLOWED_ORIGINS: 'https://app.example.com' }).allowedOrigins, ['https://app.example.com'], 'the old name still works')
  t.same(loadConfig({ ALLOWED_ORIGINS: 'https://a.example', WS_ALLOWED_ORIGINS: 'https://a.example' }).allowedOrigins, ['https://a.example'], 'both, the same')
  t.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://a.example', WS_ALLOWED_ORIGINS: 'https://b.example' }),
    { name: 'ConfigError', message: /ALLOWED_ORIGINS and WS_ALLOWED_ORIGINS differ/ })
  for (const value of ['https://app.example.com/', 'app.example.com', 'https://a.example/path', 'https://a.example,,https://b.example']) {
    t.throws(() => loadConfig({ ALLOWED_ORIGINS: value }), { name: 'ConfigError', message: /ALLOWED_ORIGINS: must match pattern/ }, `${value}: not an origin (an origin has no path, not even /)`)
  }
})

t.test('CORS_CREDENTIALS: off by default; only with named origins, never with *', async (t) => {
  t.equal(loadConfig({}).corsCredentials, false)
  t.equal(loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com', CORS_CREDENTIALS: '1' }).corsCredentials, true)
  t.throws(() => loadConfig({ CORS_CREDENTIALS: '1' }), { name: 'ConfigError', message: /CORS_CREDENTIALS is on without ALLOWED_ORIGINS/ })
  t.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com,*', CORS_CREDENTIALS: 'yes' }), { name: 'ConfigError', message: /CORS_CREDENTIALS is on with ALLOWED_ORIGINS=\*/ })
})

t.test('RATE_LIMIT_PER_SERVICE counts notifications a minute, 0 for none', async (t) => {
  t.equal(loadConfig({ RATE_LIMIT_PER_SERVICE: '0' }).rateLimit.perService, 0)
  t.equal(loadConfig({ RATE_LIMIT_PER_SERVICE: '1000000' }).rateLimit.perService, 1_000_000)
  t.throws(() => loadConfig({ RATE_LIMIT_PER_SERVICE: '-1' }), { name: 'ConfigError', message: /RATE_LIMIT_PER_SERVICE/ })
})

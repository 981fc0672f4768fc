import { Ajv } from 'ajv'
import type { FromSchema } from 'json-schema-to-ts'

/**
 * The gateway's configuration: environment variables, validated at boot. A bad value stops the
 * start with a message that names the variable. Every variable is listed in `.env.example` and
 * docs/configuration.md.
 */
/** An IPv4 or IPv6 address or CIDR, or one of proxy-addr's names. */
const PROXY = '((\\d{1,3}\\.){3}\\d{1,3}(/\\d{1,2})?|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(/\\d{1,3})?|loopback|linklocal|uniquelocal)'

/** A host name or address as a Host header names it (an IPv6 one in brackets), or `*` for any. */
const ALLOWED_HOST = '(\\*|[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])'
/** A browser origin (`https://app.example.com`, `capacitor://localhost`), or `*`: any. */
const ORIGIN = '(\\*|[a-z][a-z0-9+.-]*://[^/\\s,]+)'
const ORIGINS = `^${ORIGIN}( *, *${ORIGIN})*$`

/** One Redis URL; REDIS_URL may list several, comma-separated, as the seeds of a Redis Cluster. */
const REDIS = 'rediss?://[^\\s/?#,]+(/[0-9]{0,2})?([?#][^\\s,]*)?'

const configSchema = {
  type: 'object',
  // loadConfig passes only these variables on: an unknown one never reaches the schema.
  additionalProperties: false,
  properties: {
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    ALLOWED_HOSTS: { type: 'string', pattern: `^${ALLOWED_HOST}( *, *${ALLOWED_HOST})*$` },
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3000 },
    LOG_LEVEL: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    LOG_FORMAT: { enum: ['pretty', 'json'] },
    DATA_DIR: { type: 'string', minLength: 1, default: './data' },
    USERS_FILE: { type: 'string', minLength: 1 },

    KAFKA_BROKERS: { type: 'string', pattern: '^[^,\\s]+:\\d+(,[^,\\s]+:\\d+)*$' },
    KAFKA_CLIENT_ID: { type: 'string', minLength: 1, default: 'kafka-notify' },
    KAFKA_TOPIC: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$', default: 'notifications' },
    KAFKA_DLQ_TOPIC: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$', default: 'notifications.dlq' },
    KAFKA_PARTITIONS: { type: 'integer', minimum: 1, maximum: 10000, default: 6 },
    KAFKA_REPLICATION_FACTOR: { type: 'integer', minimum: 1, maximum: 32, default: 1 },
    KAFKA_MIN_INSYNC_REPLICAS: { type: 'integer', minimum: 1, maximum: 32 },
    KAFKA_GROUP_ID: { type: 'string', minLength: 1, default: 'notify-gateway' },
    KAFKA_SEND_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 120000, default: 5000 },
    LOCAL_KAFKA_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 9092 },
    LOCAL_KAFKA_CONTROLLER_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 9093 },

    AUTH_MODE: { enum: ['dev', 'jwt'], default: 'dev' },
    AUTH_SECRET: { type: 'string', minLength: 32 },
    AUTH_JWKS_URL: { type: 'string', pattern: '^https?://' },
    AUTH_ISSUER: { type: 'string', minLength: 1 },
    AUTH_AUDIENCE: { type: 'string', minLength: 1 },
    AUTH_ALLOW_ANY_AUDIENCE: { type: 'boolean', default: false },
    SESSION_TTL_SECONDS: { type: 'integer', minimum: 10, maximum: 604800, default: 3600 },

    TRUST_PROXY: { type: 'string', pattern: `^${PROXY}( *, *${PROXY})*$` },
    RATE_LIMIT_PER_USER: { type: 'integer', minimum: 0, maximum: 1000000, default: 120 },
    RATE_LIMIT_PER_IP: { type: 'integer', minimum: 0, maximum: 10000000, default: 600 },
    RATE_LIMIT_PER_SERVICE: { type: 'integer', minimum: 0, maximum: 100000000, default: 60000 },
    WS_MAX_CONNECTIONS_PER_USER: { type: 'integer', minimum: 0, maximum: 100000, default: 20 },
    WS_MAX_CONNECTIONS_PER_IP: { type: 'integer', minimum: 0, maximum: 1000000, default: 500 },
    ALLOWED_ORIGINS: { type: 'string', pattern: ORIGINS },
    // ALLOWED_ORIGINS's name from when it was the WebSocket's alone; still read.
    WS_ALLOWED_ORIGINS: { type: 'string', pattern: ORIGINS },
    CORS_CREDENTIALS: { type: 'boolean', default: false },
    WS_HEARTBEAT_MS: { type: 'integer', minimum: 1000, maximum: 600000, default: 30000 },
    WS_MAX_BUFFERED_BYTES: { type: 'integer', minimum: 1024, maximum: 268435456, default: 1048576 },

    // A userinfo part may hold a password: the value is never echoed (SECRET_VARIABLES).
    DATABASE_URL: { type: 'string', pattern: '^postgres(ql)?://\\S+$' },
    DATABASE_POOL_SIZE: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
    REDIS_URL: { type: 'string', pattern: `^${REDIS}(,${REDIS})*$` },
    REDIS_CLUSTER: { type: 'boolean', default: false },

    INBOX_MAX_PER_USER: { type: 'integer', minimum: 1, maximum: 1000000, default: 1000 },
    INBOX_MAX_AGE_DAYS: { type: 'number', exclusiveMinimum: 0, maximum: 36500, default: 30 },
    GROUP_WINDOW_MS: { type: 'integer', minimum: 0, maximum: 31536000000, default: 86400000 },

    COMPAT_TUTORIAL: { type: 'boolean', default: false },
    SHUTDOWN_GRACE_MS: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 }
  },
  required: []
} as const

/**
 * The variables as validated: each of its schema type, defaults filled in. One that is optional
 * (no default) reads as `undefined` when unset, and its config field is always there, undefined.
 */
type Variables = { [K in keyof Validated]-?: {} extends Pick<Validated, K> ? Validated[K] | undefined : Validated[K] }
type Validated = FromSchema<typeof configSchema>

/** The gateway's configuration, as the rest of the code reads it: its type is what `configFrom` builds. */
export type Config = ReturnType<typeof configFrom>

/** Shapes the validated variables; their types come from the schema, so a value of the wrong type in a field does not compile. */
function configFrom (v: Variables) {
  return {
    host: v.HOST,
    port: v.PORT,
    /**
     * Host header names the gateway answers to (DNS rebinding: a hostile page whose name resolves
     * to this address is "same origin" with it); undefined = any, unless dev mode (see allowedHosts).
     */
    allowedHosts: allowedHosts(v),
    logLevel: v.LOG_LEVEL,
    /** Unset: pretty on a terminal, JSON otherwise and in production (logger.ts). */
    logFormat: v.LOG_FORMAT,
    dataDir: v.DATA_DIR,
    usersFile: v.USERS_FILE,
    kafka: {
      /** Unset: the gateway starts its own local broker (local/kafka/launcher.ts). */
      brokers: v.KAFKA_BROKERS?.split(','),
      clientId: v.KAFKA_CLIENT_ID,
      topic: v.KAFKA_TOPIC,
      dlqTopic: v.KAFKA_DLQ_TOPIC,
      partitions: v.KAFKA_PARTITIONS,
      replicationFactor: v.KAFKA_REPLICATION_FACTOR,
      /**
       * min.insync.replicas of the topics the gateway creates, and the least it accepts on existing
       * ones: how many replicas have a record before a 202. Two when there can be two; more would
       * make one broker down stop every write.
       */
      minInsyncReplicas: v.KAFKA_MIN_INSYNC_REPLICAS ?? Math.min(2, v.KAFKA_REPLICATION_FACTOR),
      groupId: v.KAFKA_GROUP_ID,
      /** How long a publish may take, from its call, before it fails (and the POST answers 503). */
      sendTimeoutMs: v.KAFKA_SEND_TIMEOUT_MS,
      localPort: v.LOCAL_KAFKA_PORT,
      localControllerPort: v.LOCAL_KAFKA_CONTROLLER_PORT
    },
    auth: {
      mode: v.AUTH_MODE,
      /** Dev mode signs its own tokens with this; a random one per process when unset. */
      secret: v.AUTH_SECRET,
      jwksUrl: v.AUTH_JWKS_URL,
      issuer: v.AUTH_ISSUER,
      audience: v.AUTH_AUDIENCE,
      /** jwt mode without AUTH_AUDIENCE: the operator said every token of the identity service is for this gateway. */
      anyAudience: v.AUTH_ALLOW_ANY_AUDIENCE,
      sessionTtlSeconds: v.SESSION_TTL_SECONDS
    },
    /**
     * The proxies in front (addresses, CIDRs, or proxy-addr's loopback / linklocal / uniquelocal)
     * whose X-Forwarded-For is believed; false: the client is the peer.
     */
    trustProxy: v.TRUST_PROXY === undefined ? false : v.TRUST_PROXY.split(',').map((part) => part.trim()).join(','),
    /** Requests per minute (per service: notifications per minute); 0 = no limit. */
    rateLimit: { perUser: v.RATE_LIMIT_PER_USER, perIp: v.RATE_LIMIT_PER_IP, perService: v.RATE_LIMIT_PER_SERVICE },
    ws: {
      heartbeatMs: v.WS_HEARTBEAT_MS,
      maxBufferedBytes: v.WS_MAX_BUFFERED_BYTES,
      /** 0 = no limit. */
      maxConnectionsPerUser: v.WS_MAX_CONNECTIONS_PER_USER,
      maxConnectionsPerIp: v.WS_MAX_CONNECTIONS_PER_IP
    },
    /**
     * Browser origins allowed to call the API (CORS) and open /ws, `*` for any; undefined = the
     * gateway's own origin only (no CORS; /ws from its own page and from clients that send no Origin).
     */
    allowedOrigins: (v.ALLOWED_ORIGINS ?? v.WS_ALLOWED_ORIGINS)?.split(',').map((origin) => origin.trim()),
    /** CORS answers allow credentials (cookies, HTTP auth): only when asked for, and never with `*`. */
    corsCredentials: v.CORS_CREDENTIALS,
    inbox: { maxPerUser: v.INBOX_MAX_PER_USER, maxAgeDays: v.INBOX_MAX_AGE_DAYS },
    /** How long after a group's first notification (by event time) others of its type and key join it; 0: no grouping. */
    groupWindowMs: v.GROUP_WINDOW_MS,
    /** Set: the inbox is shared in PostgreSQL (several gateways); unset: SQLite under DATA_DIR. */
    databaseUrl: v.DATABASE_URL,
    /** PostgreSQL connections for the API (history, catch-up, read marks, retention); the consumer has 3 of its own. */
    databasePoolSize: v.DATABASE_POOL_SIZE,
    /** Set: several gateways are one system, frames cross between them through Redis pub/sub. */
    redisUrl: v.REDIS_URL,
    /** REDIS_URL is a Redis Cluster: its comma-separated URLs are seed nodes. */
    redisCluster: v.REDIS_CLUSTER,
    compatTutorial: v.COMPAT_TUTORIAL,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS
  }
}

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

const FLAGS = new Set(['COMPAT_TUTORIAL', 'REDIS_CLUSTER', 'AUTH_ALLOW_ANY_AUDIENCE', 'CORS_CREDENTIALS'])

/**
 * Secrets published in this repository (docker-compose.yml's default, for its dev-mode cluster):
 * anyone can sign tokens with them, so jwt mode refuses them.
 */
export const PUBLIC_SECRETS: readonly string[] = ['dev-only-not-secret-set-AUTH_SECRET-for-anything-else']

/** Where dev mode answers by default: this machine's own names, and the address it listens on. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]']

/** Never echoed into errors: they end up in logs. */
const SECRET_VARIABLES = new Set(['AUTH_SECRET', 'REDIS_URL', 'DATABASE_URL'])

const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true })
const validate = ajv.compile(configSchema)

type Env = Record<string, string | undefined>

/** Reads the configuration from the environment; throws ConfigError naming each bad variable. */
export function loadConfig (env: Env = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(configSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = FLAGS.has(key) ? parseFlag(key, value) : value
  }
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((error) => {
      const name = error.instancePath.replace(/^\//, '')
      const got = SECRET_VARIABLES.has(name) ? '' : ` (got ${JSON.stringify(env[name])})`
      return `${name}: ${error.message ?? 'is invalid'}${got}`
    })
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`)
  }
  // Validated above: each value has its schema type, and defaults are filled in.
  const config = configFrom(raw as Variables)
  if (config.kafka.topic === config.kafka.dlqTopic) {
    throw new ConfigError('Invalid configuration: KAFKA_DLQ_TOPIC must differ from KAFKA_TOPIC')
  }
  if (config.kafka.minInsyncReplicas > config.kafka.replicationFactor) {
    throw new ConfigError(`Invalid configuration: KAFKA_MIN_INSYNC_REPLICAS must be at most KAFKA_REPLICATION_FACTOR (${config.kafka.replicationFactor}), ` +
      `or Kafka refuses every write (got ${JSON.stringify(env.KAFKA_MIN_INSYNC_REPLICAS)})`)
  }
  if (config.auth.mode === 'jwt') checkJwtMode(config)
  if (config.auth.jwksUrl !== undefined && new URL(config.auth.jwksUrl).protocol === 'http:' && !isLoopback(new URL(config.auth.jwksUrl).hostname)) {
    throw new ConfigError('Invalid configuration: AUTH_JWKS_URL must be https:// (plain http:// only on a loopback address): ' +
      'whoever can change the keys on the way can sign tokens for any user')
  }
  if (env.ALLOWED_ORIGINS !== undefined && env.ALLOWED_ORIGINS !== '' && env.WS_ALLOWED_ORIGINS !== undefined && env.WS_ALLOWED_ORIGINS !== '' && env.ALLOWED_ORIGINS !== env.WS_ALLOWED_ORIGINS) {
    throw new ConfigError('Invalid configuration: ALLOWED_ORIGINS and WS_ALLOWED_ORIGINS differ: WS_ALLOWED_ORIGINS is the old name of ALLOWED_ORIGINS, which now also covers the API (CORS): set only ALLOWED_ORIGINS')
  }
  if (config.corsCredentials && config.allowedOrigins === undefined) {
    throw new ConfigError('Invalid configuration: CORS_CREDENTIALS is on without ALLOWED_ORIGINS: name the origins that may send credentials')
  }
  if (config.corsCredentials && config.allowedOrigins?.includes('*') === true) {
    throw new ConfigError('Invalid configuration: CORS_CREDENTIALS is on with ALLOWED_ORIGINS=*: any site could then make requests with your users\' credentials; list the origins instead')
  }
  if (config.redisCluster && config.redisUrl === undefined) {
    throw new ConfigError('Invalid configuration: REDIS_CLUSTER is on without REDIS_URL, the cluster\'s seed nodes')
  }
  if (!config.redisCluster && config.redisUrl?.includes(',') === true) {
    throw new ConfigError('Invalid configuration: REDIS_URL lists several servers, which only a Redis Cluster takes: set REDIS_CLUSTER=1, or name one server')
  }
  if (config.redisUrl !== undefined && config.auth.mode === 'dev' && config.auth.secret === undefined) {
    throw new ConfigError('Invalid configuration: REDIS_URL is set (several gateways) with AUTH_MODE=dev, so AUTH_SECRET must be set too, ' +
      'the same on every gateway: a dev token signed by one gateway must verify on the others (without it each one signs with a random secret of its own)')
  }
  return config
}

function checkJwtMode (config: Config): void {
  const { secret, jwksUrl, audience, anyAudience } = config.auth
  if (secret === undefined && jwksUrl === undefined) {
    throw new ConfigError('Invalid configuration: AUTH_MODE=jwt needs AUTH_SECRET (HS256) or AUTH_JWKS_URL (RS256/ES256)')
  }
  if (secret !== undefined && PUBLIC_SECRETS.includes(secret)) {
    throw new ConfigError('Invalid configuration: AUTH_SECRET is the public default of docker-compose.yml, which anyone can sign tokens with: ' +
      'AUTH_MODE=jwt needs your identity service\'s own secret')
  }
  if (audience === undefined && !anyAudience) {
    throw new ConfigError('Invalid configuration: AUTH_MODE=jwt needs AUTH_AUDIENCE, the `aud` your identity service puts in tokens meant for this gateway: ' +
      'without it, a token it issued for any other application is accepted here. Set AUTH_ALLOW_ANY_AUDIENCE=1 only if it issues tokens for this gateway alone')
  }
  if (config.compatTutorial && !isLoopback(config.host)) {
    throw new ConfigError(`Invalid configuration: COMPAT_TUTORIAL=1 with AUTH_MODE=jwt on HOST=${config.host}, not a loopback address: ` +
      'the tutorial\'s routes take no token, so anyone who reaches them could send as any user and read anyone\'s notifications')
  }
}

/**
 * What the configuration allows but an operator should hear about at start-up: each a sentence for
 * the log, at warn level.
 */
export function configWarnings (config: Config): string[] {
  const warnings: string[] = []
  const where = `${config.host}:${config.port}`
  if (config.auth.mode === 'dev') {
    warnings.push(`AUTH_MODE=dev: anyone who can reach ${where} can sign in as any user. ` +
      (isLoopback(config.host) ? 'Bound to loopback only.' : 'This is NOT a loopback address: use AUTH_MODE=jwt outside your own machine.'))
    if (config.compatTutorial && !isLoopback(config.host)) {
      warnings.push(`COMPAT_TUTORIAL=1 on ${where}, NOT a loopback address: POST /send and GET /notifications/:userID take no token, ` +
        'so anyone who can reach them can send as any user and read anyone\'s notifications. AUTH_MODE=jwt refuses to start like this.')
    }
  }
  if (config.auth.mode === 'jwt' && config.auth.secret !== undefined && config.auth.jwksUrl !== undefined) {
    warnings.push('AUTH_SECRET and AUTH_JWKS_URL are both set: HS256 tokens signed with the secret are accepted as well as the JWKS keys\' ' +
      'RS256/ES256 ones. Unset the one your identity service does not use: every key that verifies is one more that can leak')
  }
  return warnings
}

/** 127.0.0.0/8, ::1 or localhost: only this machine reaches it. */
export function isLoopback (host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare)
}

/** ALLOWED_HOSTS as a list (undefined: any host); in dev mode, this machine's names and HOST at least. */
function allowedHosts (v: Variables): string[] | undefined {
  const listed = v.ALLOWED_HOSTS?.split(',').map((host) => host.trim().toLowerCase())
  if (listed?.includes('*') === true) return undefined
  if (listed === undefined && v.AUTH_MODE !== 'dev') return undefined
  const own = v.HOST.includes(':') ? `[${v.HOST}]` : v.HOST
  return [...new Set([...LOOPBACK_HOSTS, own.toLowerCase(), ...listed ?? []])]
}

function parseFlag (name: string, value: string): boolean {
  if (['1', 'true', 'yes', 'on'].includes(value.toLowerCase())) return true
  if (['0', 'false', 'no', 'off'].includes(value.toLowerCase())) return false
  throw new ConfigError(`Invalid configuration: ${name}: must be 1 or 0 (got ${JSON.stringify(value)})`)
}

import { hostname } from 'node:os'
import { type Static, type TSchema, Type } from 'typebox'
import { Value } from 'typebox/value'

/**
 * The whole configuration of the process, read once from the environment at start.
 * Every variable is documented in docs/CONFIGURATION.md (npm run docs:config); nothing else reads process.env.
 */
const oneOf = <const T extends string[]>(values: T, fallback: T[number], description: string) =>
  Type.Enum(values, { default: fallback, description })

const port = (fallback: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: fallback, description })

export const ConfigSchema = Type.Object({
  PORT: port(8080, 'HTTP port'),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'HTTP listen address' }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level'),
  LOG_FORMAT: Type.Optional(
    Type.Enum(['pretty', 'json'], {
      description:
        'pretty: one readable line per event; json: pino JSON lines. Unset: pretty when stdout is a terminal',
    }),
  ),
  DATA_DIR: Type.String({
    minLength: 1,
    default: './data',
    description: 'embedded database, journal, archive',
  }),
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; unset = embedded PGlite' }),
  ),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: 'pg pool size' }),
  DB_MIGRATE_ON_START: Type.Boolean({ default: true, description: 'run migrations at start' }),
  MQTT_URL: Type.Optional(
    Type.String({
      pattern: '^(mqtts?|wss?|tcp)://[^,\\s]+(,(mqtts?|wss?|tcp)://[^,\\s]+)*$',
      description: 'broker URL(s), comma-separated; unset = embedded broker',
    }),
  ),
  MQTT_BROKER_PORT: port(1883, 'port of the embedded broker'),
  MQTT_CLIENT_ID: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    default: `iot-meter-${hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 40)}`,
    description: 'stable MQTT client id of this replica (persistent session)',
  }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({
    description:
      'how long a graceful close (draining the journal into the stores) may take before the process exits',
    minimum: 100,
    maximum: 120000,
    default: 10000,
  }),

  MQTT_SHARED_GROUP: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      description: 'MQTT v5 shared-subscription group (replicas)',
    }),
  ),

  // Production engines (modules telemetry and archive)
  INFLUX_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: 'InfluxDB 2 URL; unset = PostgreSQL' }),
  ),
  INFLUX_TOKEN: Type.Optional(
    Type.String({
      description:
        'InfluxDB API token, limited to the bucket (influx auth create --read-bucket --write-bucket)',
      minLength: 1,
    }),
  ),
  INFLUX_ORG: Type.Optional(Type.String({ description: 'InfluxDB organisation', minLength: 1 })),
  INFLUX_BUCKET: Type.Optional(Type.String({ description: 'InfluxDB bucket', minLength: 1 })),
  S3_BUCKET: Type.Optional(
    Type.String({
      pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
      description: 'archive bucket; unset = files',
    }),
  ),
  S3_ENDPOINT: Type.Optional(
    Type.String({ description: 'S3-compatible endpoint (MinIO…); unset = AWS', pattern: '^https?://' }),
  ),
  S3_REGION: Type.String({ description: 'S3 region', minLength: 1, default: 'us-east-1' }),
  S3_ACCESS_KEY_ID: Type.Optional(
    Type.String({ description: 'access key of the archive (allowed only S3_BUCKET)', minLength: 1 }),
  ),
  S3_SECRET_ACCESS_KEY: Type.Optional(
    Type.String({ description: 'secret of S3_ACCESS_KEY_ID', minLength: 1 }),
  ),
  S3_FORCE_PATH_STYLE: Type.Boolean({
    description: 'path-style URLs (http://host/bucket/key): MinIO needs them, AWS works either way',
    default: true,
  }),

  // Security (modules auth and ingest; platform mqtt)
  AUTH_DISABLED: Type.Boolean({
    default: false,
    description: 'turn off HTTP authentication (trusted labs only)',
  }),
  ADMIN_TOKEN: Type.Optional(
    Type.String({ minLength: 16, maxLength: 256, description: 'bootstrap admin token' }),
  ),
  METRICS_TOKEN: Type.Optional(
    Type.String({ minLength: 16, maxLength: 256, description: 'protects /metrics' }),
  ),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated allowed origins' })),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 600, description: '0 = off' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({
    description: 'window of RATE_LIMIT_MAX',
    minimum: 100,
    maximum: 3_600_000,
    default: 60_000,
  }),
  BODY_LIMIT_BYTES: Type.Integer({
    description: 'largest HTTP request body',
    minimum: 1024,
    maximum: 100 * 1024 * 1024,
    default: 1024 * 1024,
  }),
  MQTT_DEVICE_AUTH: oneOf(
    ['token', 'mtls', 'none'],
    'token',
    'how devices authenticate to the embedded broker',
  ),
  MQTT_AUTH_FAIL_DELAY_MS: Type.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 1000,
    description:
      'embedded broker: a refused CONNECT gets its CONNACK (and is closed) only after this delay, so a client waiting for answers makes one guess per delay; 0 = at once',
  }),
  MQTT_AUTH_FAIL_HELD_MAX: Type.Integer({
    minimum: 0,
    maximum: 100_000,
    default: 1000,
    description: 'refused CONNECTs held in that delay at once; beyond, refused and closed at once',
  }),
  MQTT_AUTH_FAIL_MAX: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 30,
    description:
      'refused CONNECTs from one address (IPv6: its /64), or connections of one device closed for a forbidden publish, within MQTT_AUTH_FAIL_WINDOW_MS after which further CONNECTs from it are refused without checking credentials until the window ends; devices behind one NAT share an address; connected devices stay; 0 = off',
  }),
  MQTT_AUTH_FAIL_WINDOW_MS: Type.Integer({
    minimum: 1000,
    maximum: 86_400_000,
    default: 60_000,
    description: 'window of MQTT_AUTH_FAIL_MAX, counted from the first failure',
  }),
  MQTT_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 120_000,
    default: 5000,
    description: 'embedded broker: a connection whose CONNECT has not arrived by then is closed',
  }),
  MQTT_UNAUTH_PER_ADDRESS: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 64,
    description:
      'embedded broker: connections not yet authenticated at once per remote address (IPv6: per /64); more are closed at accept; devices behind one NAT share it; 0 = no limit',
  }),
  MQTT_TLS_PORT: Type.Optional(
    Type.Integer({
      description:
        'TLS listener of the embedded broker (needs MQTT_TLS_CERT, MQTT_TLS_KEY; MQTT_TLS_CA for mtls)',
      minimum: 0,
      maximum: 65535,
    }),
  ),
  MQTT_TLS_CERT: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM file of the broker certificate' }),
  ),
  MQTT_TLS_KEY: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of its private key' })),
  MQTT_TLS_CA: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM file of the CA that signs devices' }),
  ),
  INGEST_MAX_BYTES: Type.Integer({
    description: 'largest MQTT message the ingest accepts',
    minimum: 256,
    maximum: 16 * 1024 * 1024,
    default: 64 * 1024,
  }),
  INGEST_MAX_FUTURE_S: Type.Integer({
    description: 'how far in the future a message timestamp may lie before it is rejected',
    minimum: 0,
    maximum: 365 * 86400,
    default: 86400,
  }),
  INGEST_MAX_PAST_S: Type.Integer({
    description: 'how far in the past a message timestamp may lie before it is rejected',
    minimum: 0,
    maximum: 20 * 365 * 86400,
    default: 365 * 86400,
  }),
  INGEST_DEVICE_RATE_MAX: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 0,
    description: 'messages per second per device before the excess is dropped and counted; 0 = no limit',
  }),

  // Ingest (module ingest)
  UNKNOWN_DEVICE_POLICY: oneOf(
    ['reject', 'auto_register'],
    'reject',
    'what to do with unregistered device ids',
  ),
  INGEST_FLUSH_MS: Type.Integer({
    minimum: 10,
    maximum: 60000,
    default: 250,
    description: 'store flush period',
  }),
  INGEST_BATCH_MAX: Type.Integer({
    minimum: 1,
    maximum: 100000,
    default: 5000,
    description: 'messages per flush',
  }),
  INGEST_MAX_INFLIGHT: Type.Integer({
    minimum: 10,
    maximum: 10_000_000,
    default: 200_000,
    description:
      'journaled messages not yet stored in the database before intake pauses (a backstop for tiny messages; INGEST_MAX_PENDING_BYTES binds first for datagrams; archive lines do not count)',
  }),
  INGEST_MAX_PENDING_BYTES: Type.Integer({
    minimum: 64 * 1024,
    maximum: 64 * 1024 * 1024 * 1024,
    default: 64 * 1024 * 1024,
    description:
      'memory of journaled messages not yet stored in the database (payload, topic and ~160 bytes each) before intake pauses: bounds memory while the database is down',
  }),
  INGEST_GAP_GRACE_MS: Type.Integer({
    description:
      'how long a missing seq may still arrive (out of order, another broker) before it counts as a gap',
    minimum: 0,
    maximum: 3_600_000,
    default: 30000,
  }),
  INGEST_DEDUP_WINDOW: Type.Integer({
    description:
      'seqs per device remembered for deduplication (4 bytes each: a payload digest; up to twice that per device for ~one window after a reboot)',
    minimum: 64,
    maximum: 65536,
    default: 1024,
  }),
  DEVICE_CACHE_MAX: Type.Integer({
    description: 'devices whose dedup window and id lookup stay cached in memory (LRU)',
    minimum: 100,
    maximum: 10_000_000,
    default: 100000,
  }),
  LIVENESS_SWEEP_MS: Type.Integer({
    description: 'how often silent devices are marked offline',
    minimum: 100,
    maximum: 600000,
    default: 5000,
  }),
  ARCHIVE_FLUSH_MS: Type.Integer({
    minimum: 10,
    maximum: 1000,
    default: 1000,
    description: 'checkpoint period: archive objects, registry activity, dedup state',
  }),
  ARCHIVE_BUFFER_MAX_BYTES: Type.Integer({
    minimum: 64 * 1024,
    maximum: 64 * 1024 * 1024 * 1024,
    default: 128 * 1024 * 1024,
    description:
      'memory of archive lines stored in the database but not yet written to the archive; past half of it a checkpoint starts at once, at all of it intake pauses (an archive outage)',
  }),

  // Commands (module commands)
  COMMAND_ACK_TIMEOUT_S: Type.Integer({
    description: 'a command without an ack after this long becomes timeout',
    minimum: 1,
    maximum: 86400,
    default: 300,
  }),

  // Retention (module retention)
  RETENTION_RAW_DAYS: Type.Integer({
    minimum: 0,
    maximum: 36500,
    default: 90,
    description:
      'raw samples (telemetry) are kept this many days: whole daily partitions older than that are dropped; 0 = kept for ever',
  }),
  RETENTION_ROLLUP_DAYS: Type.Integer({
    minimum: 0,
    maximum: 36500,
    default: 1825,
    description: 'rollups (1-minute and 1-hour aggregates) are kept this many days; 0 = kept for ever',
  }),
  RETENTION_ARCHIVE_DAYS: Type.Integer({
    minimum: 0,
    maximum: 36500,
    default: 30,
    description:
      'archive objects (raw messages) are kept this many days, by the day in their key; 0 = kept for ever (or left to an S3 lifecycle rule)',
  }),
  RETENTION_INTERVAL_S: Type.Integer({
    minimum: 10,
    maximum: 86400,
    default: 3600,
    description:
      'how often the retention job runs (one replica at a time): creates telemetry partitions ahead, drops expired ones, deletes expired archive objects',
  }),
  TELEMETRY_PARTITIONS_AHEAD_DAYS: Type.Integer({
    minimum: 1,
    maximum: 365,
    default: 7,
    description: 'daily telemetry partitions created ahead of today',
  }),

  // Alert delivery (module alerts)
  ALERT_WEBHOOK_URLS: Type.Optional(
    Type.String({
      pattern: '^https?://[^,\\s]+(,https?://[^,\\s]+)*$',
      description:
        'comma-separated webhook URLs that receive every alert event (opened, updated, acknowledged, resolved) as a signed JSON POST; unset = none',
    }),
  ),
  ALERT_WEBHOOK_SECRET: Type.Optional(
    Type.String({
      minLength: 16,
      maxLength: 256,
      description:
        'HMAC-SHA256 key of the X-IoT-Meter-Signature header (t=<unix s>,v1=<hex of HMAC(t + "." + body)>); required with ALERT_WEBHOOK_URLS',
    }),
  ),
  ALERTMANAGER_URL: Type.Optional(
    Type.String({
      pattern: '^https?://[^,\\s]+$',
      description: 'Prometheus Alertmanager base URL (its v2 API receives alerts); unset = none',
    }),
  ),
  ALERTMANAGER_RESEND_S: Type.Integer({
    minimum: 5,
    maximum: 3600,
    default: 60,
    description:
      'open alerts are sent to Alertmanager again this often (firing alerts carry endsAt = now + 4 × this, as Prometheus does)',
  }),
  ALERT_UPDATE_NOTIFY_S: Type.Integer({
    minimum: 0,
    maximum: 86400,
    default: 300,
    description:
      'an open alert raised again sends an "updated" event at most once per this many seconds; 0 = on every repeat',
  }),
  ALERT_DELIVERY_POLL_MS: Type.Integer({
    minimum: 50,
    maximum: 60_000,
    default: 1000,
    description: 'how often the delivery worker looks for due alert events in the outbox',
  }),
  ALERT_RETRY_MIN_MS: Type.Integer({
    minimum: 10,
    maximum: 3_600_000,
    default: 1000,
    description: 'first retry delay of a failed delivery; doubles per attempt (with jitter)',
  }),
  ALERT_RETRY_MAX_MS: Type.Integer({
    minimum: 10,
    maximum: 86_400_000,
    default: 300_000,
    description: 'longest retry delay; deliveries are retried until they succeed (nothing is dropped)',
  }),
  ALERT_DELIVERY_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 120_000,
    default: 10_000,
    description: 'HTTP timeout of one delivery attempt',
  }),

  // Power and energy (module telemetry)
  ENERGY_INTERVAL: oneOf(['5m', '15m', '1h'], '5m', 'register interval of the stored energy profile'),
  ENERGY_MAX_GAP_S: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, maximum: 86400, description: 'default: 5 × the sampling cadence' }),
  ),

  // Simulator (module simulator)
  SIMULATOR_ENABLED: Type.Boolean({
    description: 'run simulated meters inside the server (they speak only MQTT)',
    default: false,
  }),
  SIMULATOR_DEVICES: Type.Integer({
    description: 'number of simulated meters',
    minimum: 0,
    maximum: 100000,
    default: 3,
  }),
  SIMULATOR_AC_SHARE: Type.Number({
    description: 'share of AC meters (the rest are DC)',
    minimum: 0,
    maximum: 1,
    default: 0.34,
  }),
  SIMULATOR_SEND_INTERVAL_S: Type.Integer({
    description: 'telemetry send interval of the simulated meters',
    minimum: 1,
    maximum: 3600,
    default: 10,
  }),
  SIMULATOR_HELLO_INTERVAL_S: Type.Integer({
    description: 'hello interval of the simulated meters',
    minimum: 5,
    maximum: 3600,
    default: 30,
  }),
  SIMULATOR_SAMPLING_MS: Type.Integer({
    description: 'sampling cadence of the simulated meters',
    minimum: 100,
    maximum: 60000,
    default: 1000,
  }),
  SIMULATOR_SEED: Type.Integer({
    description: 'seed of the simulation (reproducible runs)',
    minimum: 0,
    maximum: 2 ** 31 - 1,
    default: 1,
  }),
  SIMULATOR_DUPLICATE_RATE: Type.Number({
    description: 'fault injection: share of messages sent twice',
    minimum: 0,
    maximum: 1,
    default: 0,
  }),
  SIMULATOR_DROP_RATE: Type.Number({
    description: 'fault injection: share of messages never sent (seq gaps)',
    minimum: 0,
    maximum: 1,
    default: 0,
  }),
  SIMULATOR_REORDER_RATE: Type.Number({
    description: 'fault injection: share of messages sent out of order',
    minimum: 0,
    maximum: 1,
    default: 0,
  }),
  SIMULATOR_REBOOT_EVERY_S: Type.Integer({
    minimum: 0,
    maximum: 864000,
    default: 0,
    description: '0 = never',
  }),
  SIMULATOR_ID_PREFIX: Type.String({
    description: 'prefix of the simulated device ids (<prefix>-dc-0001)',
    pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,39}$',
    default: 'sim',
  }),
})

export type Config = Readonly<Static<typeof ConfigSchema>>

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

/** Explains why a variable was refused: names it, what is allowed, and what was given. */
function describeProblem(schema: TSchema, name: string, given: unknown): string {
  const allowed = (schema as { enum?: unknown[] }).enum
  if (allowed) return `${name}: must be one of ${allowed.join(', ')} (got "${String(given)}")`
  const s = schema as Record<string, unknown>
  const rules: string[] = []
  if (s.type) rules.push(s.type === 'integer' ? 'an integer' : `a ${s.type}`)
  if (s.minimum !== undefined) rules.push(`>= ${s.minimum}`)
  if (s.maximum !== undefined) rules.push(`<= ${s.maximum}`)
  if (s.minLength !== undefined) rules.push(`at least ${s.minLength} characters`)
  if (s.pattern) rules.push(`matching ${s.pattern}`)
  return `${name}: must be ${rules.join(', ')} (got "${String(given)}")`
}

/** Variables that only make sense together: InfluxDB needs all four; webhooks need their secret. */
function requiredTogether(c: Config): string[] {
  const problems: string[] = []
  if (c.ALERT_WEBHOOK_URLS && !c.ALERT_WEBHOOK_SECRET)
    problems.push(
      'ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URLS is set (webhooks are always signed)',
    )
  if (!c.INFLUX_URL) return problems
  return problems.concat(
    (['INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET'] as const)
      .filter((name) => !c[name])
      .map((name) => `${name}: required when INFLUX_URL is set`),
  )
}

/** Reads, converts and validates the environment. Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const value = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, structuredClone(raw)))
  if (Value.Check(ConfigSchema, value)) {
    const config = value as Config
    const missing = requiredTogether(config)
    if (missing.length > 0) throw new ConfigError(missing)
    return Object.freeze(config)
  }
  const bad = new Set<string>()
  for (const error of Value.Errors(ConfigSchema, value)) bad.add(error.instancePath.replace(/^\//, ''))
  const properties = ConfigSchema.properties as Record<string, TSchema>
  throw new ConfigError(
    [...bad].map((name) => {
      const schema = properties[name]
      return schema ? describeProblem(schema, name, raw[name]) : `${name || 'environment'}: invalid`
    }),
  )
}

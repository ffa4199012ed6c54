import type { Config } from './schema.ts'

/** InfluxDB needs all four INFLUX_* variables. */
function influx(c: Config): string[] {
  if (!c.INFLUX_URL) return []
  return (['INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET'] as const)
    .filter((name) => !c[name])
    .map((name) => `${name}: required when INFLUX_URL is set`)
}

/** Static S3 keys come as a pair; neither = the SDK's default credential chain. */
function s3Keys(c: Config): string[] {
  if (Boolean(c.S3_ACCESS_KEY_ID) === Boolean(c.S3_SECRET_ACCESS_KEY)) return []
  const missing = c.S3_ACCESS_KEY_ID ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID'
  return [`${missing}: required when S3_ACCESS_KEY_ID or S3_SECRET_ACCESS_KEY is set`]
}

/** The embedded broker's TLS listener (external brokers, MQTT_URL set, ignore these variables). */
function embeddedTls(c: Config): string[] {
  if (c.MQTT_URL) return []
  if (c.MQTT_TLS_PORT === undefined)
    return c.MQTT_DEVICE_AUTH === 'mtls'
      ? ['MQTT_DEVICE_AUTH=mtls needs MQTT_TLS_PORT, MQTT_TLS_CERT, MQTT_TLS_KEY, MQTT_TLS_CA']
      : []
  const problems = (['MQTT_TLS_CERT', 'MQTT_TLS_KEY'] as const)
    .filter((name) => !c[name])
    .map((name) => `${name}: required when MQTT_TLS_PORT is set`)
  if (c.MQTT_DEVICE_AUTH === 'mtls' && !c.MQTT_TLS_CA)
    problems.push('MQTT_TLS_CA: required when MQTT_DEVICE_AUTH=mtls (the CA of the devices)')
  return problems
}

/** Rollups answer `every=` queries for windows whose raw samples are gone: they outlive them. */
function rollupsOutliveRaw(c: Config): string[] {
  if (c.RETENTION_ROLLUP_DAYS === 0) return []
  if (c.RETENTION_RAW_DAYS !== 0 && c.RETENTION_ROLLUP_DAYS >= c.RETENTION_RAW_DAYS) return []
  return [
    `RETENTION_ROLLUP_DAYS: ${c.RETENTION_ROLLUP_DAYS} keeps rollups shorter than the raw samples (RETENTION_RAW_DAYS=${c.RETENTION_RAW_DAYS}; 0 = for ever); set it to 0 or at least RETENTION_RAW_DAYS`,
  ]
}

/**
 * Variables that only make sense together, checked once at load so that a module never finds its
 * configuration incomplete: InfluxDB, S3 keys, the embedded broker's TLS; webhooks need their secret.
 */
export function crossChecks(c: Config): string[] {
  const problems: string[] = []
  if (c.ALERT_WEBHOOK_URLS && !c.ALERT_WEBHOOK_SECRET)
    problems.push(
      'ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URLS is set (webhooks are always signed)',
    )
  return problems.concat(influx(c), s3Keys(c), embeddedTls(c), rollupsOutliveRaw(c))
}

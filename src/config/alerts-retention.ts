import { Type } from 'typebox'

/** Retention and alert delivery (modules retention and alerts). */
export const alertsRetentionSettings = {
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
    description:
      'rollups (1-minute and 1-hour aggregates) are kept this many days; 0 = kept for ever; at least RETENTION_RAW_DAYS',
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
}

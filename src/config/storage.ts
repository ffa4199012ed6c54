import { Type } from 'typebox'
import { oneOf } from './schema-helpers.ts'

/** Production engines and energy: InfluxDB 2, the S3 archive, energy registers (modules telemetry and archive). */
export const storageSettings = {
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
  ARCHIVE_OBJECT_PERIOD_S: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 3600,
      description:
        'grouped archive objects: one object of every device per this many seconds, indexed in the database (S3 is billed per PUT); 0 = one object per device and category per checkpoint. Default: 60 with S3_BUCKET, 0 on files (no request cost; raw data listed within a second)',
    }),
  ),
  ENERGY_INTERVAL: oneOf(['5m', '15m', '1h'], '5m', 'register interval of the stored energy profile'),
  ENERGY_MAX_GAP_S: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, maximum: 86400, description: 'default: 5 × the sampling cadence' }),
  ),
  TELEMETRY_COMPACT_AFTER_H: Type.Integer({
    minimum: 0,
    maximum: 8760,
    default: 24,
    description:
      'raw telemetry older than this many hours is compacted into one row per device and hour of samples (PostgreSQL/PGlite store; lossless); 0 = never',
  }),
  TELEMETRY_COMPACT_INTERVAL_S: Type.Integer({
    minimum: 10,
    maximum: 86400,
    default: 600,
    description: 'how often the compaction job runs (one replica at a time)',
  }),
}

/** The part of the configuration the telemetry module reads (app.ts hands it the whole Config). */
export interface TelemetryConfig {
  /** InfluxDB 2 when set; the configuration guarantees the three below then. */
  readonly INFLUX_URL?: string
  readonly INFLUX_TOKEN?: string
  readonly INFLUX_ORG?: string
  readonly INFLUX_BUCKET?: string
  /** '5m', '15m' or '1h' (the schema allows no other). */
  readonly ENERGY_INTERVAL: string
  readonly ENERGY_MAX_GAP_S?: number
  readonly INGEST_GAP_GRACE_MS: number
  /** Hours after which raw rows are compacted (0 = never), and how often the job runs. */
  readonly TELEMETRY_COMPACT_AFTER_H: number
  readonly TELEMETRY_COMPACT_INTERVAL_S: number
  /** The replica's name, recorded with each run of the compaction job. */
  readonly MQTT_CLIENT_ID: string
}

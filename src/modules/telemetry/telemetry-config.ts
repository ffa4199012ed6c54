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
}

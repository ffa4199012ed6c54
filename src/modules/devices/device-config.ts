/** The configuration a meter runs with (PROTOCOL.md "Device configuration"), stored per device. */
export interface DeviceConfig {
  sampling_cadence_ms: number
  send_interval_s: number
  hello_interval_s: number
  tls_enabled: boolean
  brokers?: { host: string; port: number }[]
}

export const DEFAULT_DEVICE_CONFIG: DeviceConfig = Object.freeze({
  sampling_cadence_ms: 1000,
  send_interval_s: 10,
  hello_interval_s: 30,
  tls_enabled: true,
})

const inRange = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max

/**
 * The configuration of a new device: the defaults, overridden by any valid values found under
 * `metadata.config` at registration (invalid ones are ignored, the defaults stand).
 */
export function initialConfig(metadata: Record<string, unknown> | undefined): DeviceConfig {
  const config: DeviceConfig = { ...DEFAULT_DEVICE_CONFIG }
  const given = metadata?.config
  if (!given || typeof given !== 'object') return config
  const g = given as Record<string, unknown>
  if (inRange(g.sampling_cadence_ms, 100, 60000)) config.sampling_cadence_ms = g.sampling_cadence_ms
  if (inRange(g.send_interval_s, 1, 3600)) config.send_interval_s = g.send_interval_s
  if (inRange(g.hello_interval_s, 5, 3600)) config.hello_interval_s = g.hello_interval_s
  if (typeof g.tls_enabled === 'boolean') config.tls_enabled = g.tls_enabled
  return config
}

/** REQ-ONLINE-001: a device is offline after 2 × max(send interval, hello interval) of silence. */
export function livenessTimeoutMs(config: Partial<DeviceConfig> | null | undefined): number {
  const send = config?.send_interval_s ?? DEFAULT_DEVICE_CONFIG.send_interval_s
  const hello = config?.hello_interval_s ?? DEFAULT_DEVICE_CONFIG.hello_interval_s
  return 2 * Math.max(send, hello) * 1000
}

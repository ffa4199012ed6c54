/** What the device accepts as command parameters (PROTOCOL.md commands); anything else is refused with a reason. */
export type Checked<T> = { ok: true; value: T } | { ok: false; detail: string }

export interface ConfigChange {
  sampling_cadence_ms?: number
  send_interval_s?: number
  hello_interval_s?: number
  brokers?: { host: string; port: number }[]
}

export interface OtaRequest {
  fw_version: string
  fw_url: string
  fw_sha256: string
  fw_size_bytes: number
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
const intIn = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max

const INTERVALS = {
  sampling_cadence_ms: [100, 60000],
  send_interval_s: [1, 3600],
  hello_interval_s: [5, 3600],
} as const
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/
const HOST = /^[A-Za-z0-9.:-]{1,253}$/

/** update_config: any of the intervals and the broker list; omitted = unchanged; all or nothing. */
export function checkConfigChange(params: unknown): Checked<ConfigChange> {
  if (!isObject(params)) return { ok: false, detail: 'params must be an object' }
  const change: ConfigChange = {}
  for (const [key, value] of Object.entries(params)) {
    if (key === 'brokers') {
      if (!Array.isArray(value) || value.length < 1 || value.length > 5)
        return { ok: false, detail: 'brokers: 1 to 5 entries of {host, port}' }
      const brokers: { host: string; port: number }[] = []
      for (const b of value) {
        if (!isObject(b) || typeof b.host !== 'string' || !HOST.test(b.host) || !intIn(b.port, 1, 65535))
          return { ok: false, detail: 'brokers: each entry is {host, port 1-65535}' }
        brokers.push({ host: b.host, port: b.port })
      }
      change.brokers = brokers
    } else if (key in INTERVALS) {
      const [min, max] = INTERVALS[key as keyof typeof INTERVALS]
      if (!intIn(value, min, max)) return { ok: false, detail: `${key}: an integer from ${min} to ${max}` }
      change[key as keyof typeof INTERVALS] = value
    } else {
      return { ok: false, detail: `unknown parameter ${key}` }
    }
  }
  if (Object.keys(change).length === 0) return { ok: false, detail: 'nothing to change' }
  return { ok: true, value: change }
}

/** start_ota: the target version, an https URL, the image's SHA-256 and its size. */
export function checkOtaRequest(params: unknown): Checked<OtaRequest> {
  if (!isObject(params)) return { ok: false, detail: 'params must be an object' }
  const { fw_version, fw_url, fw_sha256, fw_size_bytes } = params
  if (typeof fw_version !== 'string' || !SEMVER.test(fw_version))
    return { ok: false, detail: 'fw_version: a semantic version' }
  if (typeof fw_url !== 'string' || !/^https:\/\/\S+$/.test(fw_url))
    return { ok: false, detail: 'fw_url: an https URL' }
  if (typeof fw_sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(fw_sha256))
    return { ok: false, detail: 'fw_sha256: 64 hexadecimal characters' }
  if (!intIn(fw_size_bytes, 1, Number.MAX_SAFE_INTEGER))
    return { ok: false, detail: 'fw_size_bytes: a positive integer' }
  return { ok: true, value: { fw_version, fw_url, fw_sha256, fw_size_bytes } }
}

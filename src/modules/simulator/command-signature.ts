import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * The device's side of command signing (PROTOCOL.md security): canonical JSON (object keys
 * sorted at every depth by UTF-16 code units, no whitespace, arrays in order) of the envelope
 * without `sig`, HMAC-SHA256 with the 32-byte key given as 64 hex characters, hex digest.
 * A device carries its own implementation; it must agree byte for byte with the server's.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('no canonical JSON for a non-finite number')
    return JSON.stringify(value)
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  throw new TypeError(`no canonical JSON for a ${typeof value}`)
}

const HEX_64 = /^[0-9a-f]{64}$/i

function hmac(unsigned: Record<string, unknown>, keyHex: string): Buffer {
  if (!HEX_64.test(keyHex)) throw new TypeError('a command key is 64 hexadecimal characters')
  return createHmac('sha256', Buffer.from(keyHex, 'hex')).update(canonicalJson(unsigned)).digest()
}

/** The signature of an envelope (any `sig` in it is ignored). */
export function signCommand(envelope: Record<string, unknown>, keyHex: string): string {
  const { sig: _sig, ...unsigned } = envelope
  return hmac(unsigned, keyHex).toString('hex')
}

/** True when `envelope.sig` is the HMAC of the rest of the envelope under this key. */
export function verifyCommand(envelope: Record<string, unknown>, keyHex: string): boolean {
  const { sig, ...unsigned } = envelope
  if (typeof sig !== 'string' || !HEX_64.test(sig)) return false
  try {
    return timingSafeEqual(hmac(unsigned, keyHex), Buffer.from(sig, 'hex'))
  } catch {
    return false
  }
}

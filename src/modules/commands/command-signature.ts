import { createHmac, timingSafeEqual } from 'node:crypto'
import { canonicalJson } from './canonical-json.ts'

/** What the server publishes on `iot/{device_id}/command` (PROTOCOL.md, commands). */
export interface CommandEnvelope {
  v: 2
  /** The device it is for: a copy published to another device's topic fails its check. */
  device_id: string
  cmd_id: string
  /** When it was signed, and after when the device must not execute it (COMMAND_ACK_TIMEOUT_S later). */
  ts: string
  exp: string
  cmd: string
  params: Record<string, unknown>
  /** HMAC-SHA256, lower-case hex, over the canonical JSON of every other field. */
  sig: string
}

export type UnsignedEnvelope = Omit<CommandEnvelope, 'sig'>

/** 32 bytes as hex: the form of a key and of a signature. */
const HEX_32_BYTES = /^[0-9a-f]{64}$/i

/** The key is 32 bytes written as 64 hex characters; the HMAC uses the bytes, not the text. */
function keyBytes(commandKey: string): Buffer {
  if (!HEX_32_BYTES.test(commandKey)) throw new TypeError('a command key is 64 hexadecimal characters')
  return Buffer.from(commandKey, 'hex')
}

/** The signature of an envelope: HMAC-SHA256 (hex) over its canonical JSON without `sig`. */
export function signCommand(envelope: UnsignedEnvelope, commandKey: string): string {
  const { sig: _ignored, ...unsigned } = envelope as UnsignedEnvelope & { sig?: unknown }
  return createHmac('sha256', keyBytes(commandKey)).update(canonicalJson(unsigned)).digest('hex')
}

/** True when `envelope.sig` is the signature of the rest of the envelope under this key; never throws. */
export function verifyCommand(envelope: Record<string, unknown>, commandKey: string): boolean {
  const { sig, ...unsigned } = envelope
  if (typeof sig !== 'string' || !HEX_32_BYTES.test(sig) || !HEX_32_BYTES.test(commandKey)) return false
  try {
    const expected = createHmac('sha256', keyBytes(commandKey)).update(canonicalJson(unsigned)).digest()
    return timingSafeEqual(expected, Buffer.from(sig, 'hex'))
  } catch {
    return false
  }
}

/** A signed envelope ready to publish. */
export function buildEnvelope(unsigned: UnsignedEnvelope, commandKey: string): CommandEnvelope {
  return { ...unsigned, sig: signCommand(unsigned, commandKey) }
}

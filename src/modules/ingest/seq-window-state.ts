/** The dedup window's saved form (seq_state rows, see SeqWindow.toState/fromState). */

/** Seqs that have not arrived (yet), between two that did; they become a gap after a grace period. */
export interface MissingRange {
  from: number
  to: number
  /** ts of the messages around the hole (ms), for the gap record. */
  fromTs: number
  toTs: number
  /** When the hole was first noticed (server clock, ms). */
  since: number
}

/** The saved state of the boot before the current one. */
interface BootState {
  high: number
  highTs: number
  bootSeq: number
  bootTs: number
  /** base64 of the Uint32Array of digests (null once no longer kept). */
  digests: string | null
}

export interface SeqWindowState {
  version: 2
  high: number
  highTs: number
  bootSeq: number
  bootTs: number
  digests: string
  missing: MissingRange[]
  prev: BootState | null
  uptime: number | null
  expectReboot: boolean
}

export const encodeDigests = (d: Uint32Array) =>
  Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64')

/** The digests saved as base64; zeros (nothing seen) when absent or of another size. */
export function decodeDigests(size: number, b64: string | null | undefined): Uint32Array {
  if (typeof b64 !== 'string') return new Uint32Array(size)
  const raw = Buffer.from(b64, 'base64')
  // A window saved with another size (or the bitmap of version 1) starts afresh: a copy then
  // passes as new, and the store's key (device, t0, seq) still keeps it from counting twice.
  if (raw.length !== size * 4) return new Uint32Array(size)
  const out = new Uint32Array(size)
  out.set(new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)))
  return out
}

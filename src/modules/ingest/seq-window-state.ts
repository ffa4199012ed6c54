/**
 * The dedup window's saved form (device_seq_tracking.state, see SeqWindow.toState/fromState).
 * Version 3 keeps the payload digests apart, by block (device_seq_digests, see seq-digests.ts);
 * version 2 held them in the state as base64 and is still read.
 */

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
  /**
   * Whether its digests are still kept: version 3 says so (true: its blocks of boot 1), version 2
   * held them here as base64 (null once no longer kept).
   */
  digests: boolean | string | null
}

export interface SeqWindowState {
  version: 2 | 3
  /** The window size the digest blocks were saved with (version 3). */
  size?: number
  high: number
  highTs: number
  bootSeq: number
  bootTs: number
  /** Version 2 only: base64 of the Uint32Array of digests. */
  digests?: string
  missing: MissingRange[]
  prev: BootState | null
  uptime: number | null
  expectReboot: boolean
}

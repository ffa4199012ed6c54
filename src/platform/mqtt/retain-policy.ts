import { isRetainedTopic } from '../../protocol/index.ts'

/** Retained payloads larger than this are published, but not retained. */
export const RETAIN_MAX_BYTES = 1024
/** Retained topics the embedded broker keeps at most (one per device: its status). */
export const RETAINED_MAX = 100_000

/**
 * Retained messages only where the protocol uses them (issue 16 row 3): a device's `status`
 * (online/offline, also its will), small, and at most RETAINED_MAX topics. Any other retained
 * publish is delivered as a plain one — a device could otherwise park 256 MB per topic in the
 * broker's memory although the ingest rejects the payload. An empty payload clears as before.
 */
export class RetainPolicy {
  private readonly topics = new Set<string>()

  /** Whether this retained publish may stay retained. */
  admit(topic: string, bytes: number): boolean {
    if (bytes === 0) {
      this.topics.delete(topic)
      return true
    }
    if (!isRetainedTopic(topic) || bytes > RETAIN_MAX_BYTES) return false
    if (!this.topics.has(topic) && this.topics.size >= RETAINED_MAX) return false
    this.topics.add(topic)
    return true
  }
}

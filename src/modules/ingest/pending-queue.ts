import type { PendingRecord } from './flush-plan.ts'

/** What a pending message costs besides its payload and topic (record object, array slot), roughly. */
const RECORD_OVERHEAD = 160

/** The memory a message is counted for while it waits (pending, in flush, or held by admission). */
export const recordBytes = (r: { topic: string; payload: Buffer }) =>
  r.payload.length + r.topic.length + RECORD_OVERHEAD

/**
 * The messages journaled but not yet stored: those waiting for the flush loop, and the batch it is
 * storing. Counted in messages and in memory, for admission's budgets and the gauges.
 */
export class PendingQueue {
  private records: PendingRecord[] = []
  private bytes = 0
  private flushCount = 0
  private inFlushBytes = 0

  /** Messages waiting for a batch. */
  get waiting(): number {
    return this.records.length
  }

  /** Messages waiting plus those of the batch being stored. */
  get count(): number {
    return this.records.length + this.flushCount
  }

  /** Memory held by both (see recordBytes). */
  get totalBytes(): number {
    return this.bytes + this.inFlushBytes
  }

  /** Messages of the batch being stored. */
  get inFlush(): number {
    return this.flushCount
  }

  push(record: PendingRecord): void {
    this.records.push(record)
    this.bytes += recordBytes(record)
  }

  /** The next batch, counted as in flush until `finish`. */
  take(max: number): PendingRecord[] {
    const batch = this.records.splice(0, max)
    let bytes = 0
    for (const r of batch) bytes += recordBytes(r)
    this.bytes -= bytes
    this.flushCount = batch.length
    this.inFlushBytes = bytes
    return batch
  }

  /** The batch is stored, or (not stored) goes back to the front for the next try. */
  finish(batch: PendingRecord[], stored: boolean): void {
    const bytes = this.inFlushBytes
    this.flushCount = 0
    this.inFlushBytes = 0
    if (stored) return
    this.records.unshift(...batch)
    this.bytes += bytes
  }

  /** The records the next batch will hold, without taking them (to parse them ahead). */
  peek(max: number): PendingRecord[] {
    return this.records.slice(0, max)
  }
}

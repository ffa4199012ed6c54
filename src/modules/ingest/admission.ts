import { DeviceRateLimiter } from './device-rate.ts'
import type { IngestConfig } from './ingest-config.ts'
import type { IngestMetrics } from './ingest-metrics.ts'
import type { Journal } from './journal.ts'
import type { JournalCommitter } from './journal-committer.ts'
import { type ParseLimits, parseTopic } from './parse-message.ts'
import { type PendingQueue, recordBytes } from './pending-queue.ts'
import type { PlanEffects } from './plan-effects.ts'
import type { RateLimitedLog } from './rate-limited-log.ts'

type Done = (error?: Error) => void

/**
 * When `accept` calls `done`: `durable` once the message's journal group is committed (end of this
 * event-loop turn); `now` at once, for a caller that holds the acknowledgement back itself until
 * the commit (a corked socket, see `afterCommit`).
 */
export type AckTiming = 'durable' | 'now'

export interface AdmissionOptions {
  config: IngestConfig
  limits: ParseLimits
  journal: Journal
  committer: JournalCommitter
  queue: PendingQueue
  /** Its archive buffer has a memory budget of its own. */
  effects: PlanEffects
  metrics: IngestMetrics
  rejectLog: RateLimitedLog
  /** True once the pipeline stops: messages are then left unacknowledged. */
  stopping: () => boolean
  /** A full batch is waiting: the flush loop should run now. */
  batchFull: () => void
}

/**
 * Admission and backpressure: a message is journaled while the unstored messages and the unwritten
 * archive lines are within their memory budgets; past them it is held, unacknowledged, until
 * `release` finds room (so the broker, not this process, keeps the backlog).
 */
export class Admission {
  private readonly held: { topic: string; payload: Buffer; done: Done }[] = []
  private heldBytes = 0
  /** INGEST_DEVICE_RATE_MAX per device, checked before journaling; undefined when 0 (off). */
  private readonly rate: DeviceRateLimiter | undefined

  constructor(private readonly o: AdmissionOptions) {
    const rateMax = o.config.INGEST_DEVICE_RATE_MAX
    this.rate = rateMax > 0 ? new DeviceRateLimiter(rateMax, o.config.DEVICE_CACHE_MAX) : undefined
  }

  /** Memory held by messages waiting for room (not yet journaled). */
  get bytesHeld(): number {
    return this.heldBytes
  }

  /**
   * Whether intake may journal another message: the unstored messages and the unwritten archive
   * lines are within their memory budgets (archive lines do not count against the first).
   */
  private hasRoom(): boolean {
    const c = this.o.config
    const queue = this.o.queue
    return (
      queue.count < c.INGEST_MAX_INFLIGHT &&
      queue.totalBytes < c.INGEST_MAX_PENDING_BYTES &&
      this.o.effects.archive.bufferedBytes < c.ARCHIVE_BUFFER_MAX_BYTES
    )
  }

  /** Takes one message from a broker (or a device on the embedded broker); `done` acknowledges it. */
  accept(topic: string, payload: Buffer, done: Done, ack: AckTiming = 'durable'): void {
    if (this.o.stopping()) return // left unacknowledged: the broker delivers it again after the restart
    const { metrics, limits, rejectLog } = this.o
    metrics.received.inc()
    if (payload.length > limits.maxBytes) {
      // Same verdict as parsing would give (INGEST_MAX_BYTES), without journaling the bulk first.
      metrics.rejected.inc({ reason: 'too_large' })
      const detail = `${payload.length} bytes > ${limits.maxBytes}`
      const fields = { reason: 'too_large', device_id: parseTopic(topic)?.deviceId, detail }
      rejectLog.warn('too_large', fields, 'message rejected')
      done()
      return
    }
    const deviceId = this.rate && parseTopic(topic)?.deviceId
    if (deviceId && !this.rate?.take(deviceId)) {
      // Dropped before the journal, and acknowledged: the device must not resend it.
      metrics.rejected.inc({ reason: 'rate_limited' })
      rejectLog.warn('rate_limited', { reason: 'rate_limited', device_id: deviceId }, 'message rejected')
      done()
      return
    }
    if (this.held.length > 0 || !this.hasRoom()) {
      // A copy: the payload may be a view of a socket's read buffer, not to be held for long.
      this.held.push({ topic, payload: Buffer.from(payload), done })
      this.heldBytes += recordBytes({ topic, payload })
      metrics.paused.set(1)
      return
    }
    this.journalAndAck(topic, payload, done, ack)
  }

  private journalAndAck(topic: string, payload: Buffer, done: Done, ack: AckTiming): void {
    const receivedAt = Date.now()
    const record = this.o.journal.append(topic, payload, receivedAt)
    this.o.queue.push({ id: record.id, topic, payload: record.payload, receivedAt })
    if (ack === 'now') {
      done()
      this.o.committer.schedule()
    } else this.o.committer.ackAfterCommit(done)
    if (this.o.queue.waiting >= this.o.config.INGEST_BATCH_MAX) this.o.batchFull()
  }

  /** Lets held messages in while there is room. */
  release(): void {
    let released = 0
    while (this.held.length > 0 && this.hasRoom()) {
      const next = this.held.shift() as { topic: string; payload: Buffer; done: Done }
      this.heldBytes -= recordBytes(next)
      this.journalAndAck(next.topic, next.payload, next.done, 'durable')
      released++
    }
    // Their connections wait for these acknowledgements: commit now, not at the end of the turn.
    if (released > 0) this.o.committer.commit()
    if (this.held.length === 0) this.o.metrics.paused.set(0)
  }
}

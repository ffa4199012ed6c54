import { measurementCount } from '../telemetry/index.ts'
import type { FlushPlan } from './flush-plan.ts'
import type { IngestMetrics } from './ingest-metrics.ts'
import type { RateLimitedLog } from './rate-limited-log.ts'

/** What the stored batches count for: the ingest's metrics, and the messages per minute. */
export class BatchStats {
  private readonly perMinute = new Map<number, number>()

  constructor(
    private readonly metrics: IngestMetrics,
    private readonly rejectLog: RateLimitedLog,
  ) {}

  /** Counts a stored batch (`ms`: how long storing it took). */
  record(plan: FlushPlan, ms: number): void {
    const m = this.metrics
    let accepted = 0
    for (const [category, n] of plan.accepted) {
      m.messages.inc({ type: category }, n)
      accepted += n
    }
    const minute = Math.floor(Date.now() / 60_000)
    this.perMinute.set(minute, (this.perMinute.get(minute) ?? 0) + accepted)
    if (plan.duplicates > 0) m.duplicates.inc(plan.duplicates)
    if (plan.conflicts > 0) m.seqConflicts.inc(plan.conflicts)
    for (const r of plan.rejected) {
      m.rejected.inc({ reason: r.reason })
      this.rejectLog.warn(
        r.reason,
        { reason: r.reason, device_id: r.deviceId, detail: r.detail },
        'message rejected',
      )
    }
    for (const g of plan.gaps) m.gaps.inc(g.count)
    let measurements = 0
    for (const d of plan.datagrams) measurements += measurementCount(d)
    if (measurements > 0) m.measurements.inc(measurements)
    const now = Date.now()
    for (const ts of plan.messageTimes) m.lag.observe(Math.max(0, now - ts) / 1000)
    if (plan.size > 0) {
      m.batchSize.observe(plan.size)
      m.flushSeconds.observe(ms / 1000)
    }
  }

  /** Messages this process stored in the last hour (per-minute buckets). */
  messagesLastHour(now = Date.now()): number {
    const minute = Math.floor(now / 60_000)
    let sum = 0
    for (const [m, n] of this.perMinute) {
      if (m > minute - 60) sum += n
      else this.perMinute.delete(m)
    }
    return sum
  }
}

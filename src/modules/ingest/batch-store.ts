import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { BatchStats } from './batch-stats.ts'
import type { DedupCache } from './dedup-cache.ts'
import { type FlushPlan, type PendingRecord, planFlush, preParse } from './flush-plan.ts'
import { confirmGapsMany, type StoredSeqs } from './gap-claims.ts'
import type { IngestConfig } from './ingest-config.ts'
import type { IngestMetrics } from './ingest-metrics.ts'
import type { ParseLimits } from './parse-message.ts'
import type { PlanEffects } from './plan-effects.ts'
import { PoisonGuard, SPLIT_AFTER } from './poison.ts'
import { insertQuarantined } from './quarantine-repository.ts'

const MAX_BACKOFF_MS = 5000

export interface BatchStoreOptions {
  config: IngestConfig
  db: Kysely<Database>
  limits: ParseLimits
  effects: PlanEffects
  cache: DedupCache
  stats: BatchStats
  metrics: IngestMetrics
  log: FastifyBaseLogger
  /** Registered devices among these ids, after the unknown-device policy ran (one query per batch). */
  lookup: (deviceIds: string[]) => Promise<Map<string, number>>
  /** Seqs stored by any replica, asked of the telemetry store before a hole becomes a gap. */
  storedSeqs: StoredSeqs
  /** The records the next batch will hold (parsed ahead while this one is in the database). */
  next: () => PendingRecord[]
  /** A batch is stored, up to this journal id. */
  onStored: (lastId: number) => void
  onError: () => void
  stopping: () => boolean
}

/** Stores one batch at a time: plan, execute (poison devices isolated), retry with backoff. */
export class BatchStore {
  /** The error of the last failed store attempt, until a batch succeeds again. */
  failure: { error: Error; since: number } | null = null
  private readonly guard: PoisonGuard

  constructor(private readonly o: BatchStoreOptions) {
    this.guard = new PoisonGuard({
      execute: (plan) => o.effects.execute(plan),
      quarantine: (deviceId, pk, records, error) => this.quarantine(deviceId, pk, records, error),
      log: o.log,
    })
  }

  /** Keeps a poison device's records of a batch in ingest_quarantine: counted, logged, alerted. */
  private async quarantine(deviceId: string, pk: number | undefined, records: PendingRecord[], error: Error) {
    const rows = records.map((record) => ({ record, deviceId }))
    await insertQuarantined(this.o.db, rows, 'store', error.message, this.o.config.MQTT_CLIENT_ID)
    this.o.metrics.quarantined.inc(records.length)
    this.o.log.error(
      { err: error, device_id: deviceId, records: records.length },
      'ingest: records quarantined',
    )
    if (pk !== undefined) await this.o.effects.alertQuarantined(pk, deviceId, records.length, error.message)
  }

  /**
   * Plans one batch once and stores it, retrying the same plan with backoff (executing a plan is
   * idempotent). A device deleted meanwhile (foreign key violation) makes it plan afresh.
   * Returns false only when stopping interrupts the retries.
   */
  async storeWithRetry(batch: PendingRecord[]): Promise<boolean> {
    let backoff = 100
    let plan: FlushPlan | undefined
    /** The same failure again and again: bisect the plan by device (poison isolation). */
    let same = 0
    let lastFailure = ''
    for (;;) {
      const started = performance.now()
      try {
        plan ??= await this.plan(batch)
        const executing = this.guard.execute(plan, batch, same >= SPLIT_AFTER)
        // Pipelined: once this batch's statement is on its way (after the microtasks that send
        // it), the next batch is parsed while the database works. Its failure is awaited below.
        executing.catch(() => undefined)
        await new Promise((resolve) => setImmediate(resolve))
        preParse(this.o.next(), Date.now(), this.o.limits)
        await executing
        this.o.effects.absorb(plan)
        this.o.cache.stored(plan.windows)
        this.o.stats.record(plan, performance.now() - started)
        this.o.onStored(plan.lastId)
        this.failure = null
        return true
      } catch (error) {
        if ((error as { code?: string }).code === '23503' && plan) {
          for (const pk of plan.windows.keys()) this.o.cache.forget(pk)
          plan = undefined
        }
        this.o.metrics.storeErrors.inc()
        this.o.onError()
        const err = error instanceof Error ? error : new Error(String(error))
        const signature = `${(error as { code?: string }).code}:${err.message}`
        same = signature === lastFailure && plan ? same + 1 : 1
        lastFailure = signature
        this.failure ??= { error: err, since: Date.now() }
        this.o.log.error(
          { err, backoff_ms: backoff, batch: batch.length },
          'storing a batch failed; retrying',
        )
        if (this.o.stopping()) return false
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
      }
    }
  }

  private plan(batch: PendingRecord[]): Promise<FlushPlan> {
    const { cache, config, db } = this.o
    return planFlush(batch, {
      now: Date.now(),
      limits: this.o.limits,
      graceMs: config.INGEST_GAP_GRACE_MS,
      holes: cache.devicesWithHoles,
      resolve: async (ids) => {
        const found = await this.o.lookup(ids)
        cache.rememberDeviceIds(found)
        return found
      },
      windowsOf: (pks) => cache.windowsOf(pks),
      deviceIdOf: (pk) => cache.deviceIdOf(pk),
      confirmGaps: (expired) => confirmGapsMany(db, expired, config.MQTT_CLIENT_ID, this.o.storedSeqs),
      onError: (err, deviceId) =>
        this.o.log.warn({ err, device_id: deviceId }, 'gap check failed; retried later'),
    })
  }
}

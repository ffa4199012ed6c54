import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { type AckTiming, Admission } from './admission.ts'
import { BatchStats } from './batch-stats.ts'
import { BatchStore } from './batch-store.ts'
import { Checkpoint } from './checkpoint.ts'
import { DedupCache } from './dedup-cache.ts'
import { FlushLoop } from './flush-loop.ts'
import type { PendingRecord } from './flush-plan.ts'
import type { StoredSeqs } from './gap-claims.ts'
import type { IngestConfig } from './ingest-config.ts'
import type { IngestMetrics } from './ingest-metrics.ts'
import type { Journal } from './journal.ts'
import { JournalCommitter } from './journal-committer.ts'
import type { ParseLimits } from './parse-message.ts'
import { PendingQueue } from './pending-queue.ts'
import type { PlanEffects } from './plan-effects.ts'
import { RateLimitedLog } from './rate-limited-log.ts'

export type { AckTiming } from './admission.ts'

type Failure = { error: Error; since: number } | null

export interface PipelineOptions {
  config: IngestConfig
  db: Kysely<Database>
  journal: Journal
  metrics: IngestMetrics
  log: FastifyBaseLogger
  limits: ParseLimits
  effects: PlanEffects
  /** Registered devices among these ids, after the unknown-device policy ran (one query per batch). */
  lookup: (deviceIds: string[]) => Promise<Map<string, number>>
  /** Seqs stored by any replica (the telemetry store): gap claims across replicas. */
  storedSeqs: StoredSeqs
}

/**
 * The ingest's core. `accept` journals a message and acknowledges it once its journal group is
 * written (the journal makes it durable); a single flush loop then stores journaled messages in
 * batches: parse, dedup, archive, time series, registry, side effects, and the dedup state last —
 * so a crash at any point replays the batch from the journal against the state before it. A
 * failing store is retried with backoff while intake pauses (acknowledgements are held, not buffered).
 *
 * Admission is bounded by memory, not by the archive's cadence: intake pauses when the messages
 * journaled but not yet stored reach INGEST_MAX_PENDING_BYTES (or INGEST_MAX_INFLIGHT of them), or
 * when the archive lines not yet written reach ARCHIVE_BUFFER_MAX_BYTES — a budget of their own,
 * which a healthy pipeline never fills: past half of it a checkpoint starts at once instead of
 * waiting for ARCHIVE_FLUSH_MS. So a database or archive outage pauses intake with bounded memory,
 * while a healthy pipeline admits as fast as it stores.
 *
 * The parts: Admission (budgets, held messages), JournalCommitter (group commit, then the
 * acknowledgements), FlushLoop and BatchStore (batches, retries, poison isolation), Checkpoint
 * (archive, registry, dedup state, then the journal settles), DedupCache, BatchStats.
 */
export class IngestPipeline {
  private stopping = false
  private readonly queue = new PendingQueue()
  private readonly committer: JournalCommitter
  private readonly admission: Admission
  private readonly cache: DedupCache
  private readonly stats: BatchStats
  private readonly store: BatchStore
  private readonly checkpoint: Checkpoint
  private readonly flush: FlushLoop

  constructor(private readonly o: PipelineOptions) {
    const { config, journal, log } = o
    const stopping = () => this.stopping
    const queue = this.queue
    const rejectLog = new RateLimitedLog(log, 10_000)
    const committer = new JournalCommitter(journal, log)
    const batchFull = () => this.flush.schedule(0)
    this.committer = committer
    this.admission = new Admission({ ...o, queue, rejectLog, stopping, committer, batchFull })
    const cache = new DedupCache(o.db, config.INGEST_DEDUP_WINDOW, config.DEVICE_CACHE_MAX)
    const checkpoint = new Checkpoint({ ...o, cache, onDone: () => this.admission.release() })
    this.stats = new BatchStats(o.metrics, rejectLog)
    this.store = new BatchStore({
      ...o,
      cache,
      stats: this.stats,
      stopping,
      next: () => queue.peek(config.INGEST_BATCH_MAX),
      onStored: (lastId) => checkpoint.stored(lastId),
      onError: () => this.updateGauges(),
    })
    const onStored = () => this.admission.release()
    const onIdle = () => this.updateGauges()
    const store = this.store
    this.flush = new FlushLoop({ ...o, queue, cache, checkpoint, store, stopping, onStored, onIdle })
    this.cache = cache
    this.checkpoint = checkpoint
  }

  /** The error of the last failed store attempt, until a batch succeeds again. */
  get failure(): Failure {
    return this.store.failure
  }

  /** The error of the last failed checkpoint, until one succeeds. */
  get checkpointFailure(): Failure {
    return this.checkpoint.failure
  }

  /** Replays what an earlier run journaled but did not store, then starts the flush loop. */
  start(replayed: PendingRecord[]): void {
    if (replayed.length > 0) this.o.log.info({ records: replayed.length }, 'replaying ingest journal')
    for (const r of replayed) this.queue.push({ ...r, replayed: true })
    this.flush.schedule(0)
  }

  /** Journaled messages not yet stored, including archive lines not yet written. */
  get inflight(): number {
    return this.queue.count + this.o.effects.archive.buffered
  }

  /** Sets the gauges of what is in flight (also while a store keeps failing). */
  updateGauges(): void {
    const m = this.o.metrics
    m.inflight.set(this.inflight)
    m.bufferedBytes.set({ what: 'pending' }, this.queue.totalBytes)
    m.bufferedBytes.set({ what: 'archive' }, this.o.effects.archive.bufferedBytes)
    m.bufferedBytes.set({ what: 'held' }, this.admission.bytesHeld)
  }

  /** Takes one message from a broker (or a device on the embedded broker); `done` acknowledges it. */
  accept(topic: string, payload: Buffer, done: (error?: Error) => void, ack: AckTiming = 'durable'): void {
    this.admission.accept(topic, payload, done, ack)
  }

  /** Runs `hook` right after the next journal commit (see JournalCommitter.afterCommit). */
  afterCommit(hook: (error?: Error) => void): void {
    this.committer.afterCommit(hook)
  }

  /** Messages this process stored in the last hour (per-minute buckets). */
  messagesLastHour(now = Date.now()): number {
    return this.stats.messagesLastHour(now)
  }

  /** Forgets what is cached about a device (it was deleted). */
  forget(pk: number): void {
    this.cache.forget(pk)
  }

  /** Stops taking messages and stores everything journaled, within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true
    const { flush, checkpoint, queue } = this
    flush.cancel()
    const deadline = Date.now() + timeoutMs
    while ((this.inflight > 0 || flush.running || checkpoint.running) && Date.now() < deadline) {
      if (!flush.running) void flush.run()
      // The records are stored; what remains is the checkpoint that lets the journal forget them.
      if (!flush.running && queue.waiting === 0 && queue.inFlush === 0) checkpoint.start(true)
      await new Promise((r) => setTimeout(r, 20))
    }
    await checkpoint.running
    if (!flush.running) {
      checkpoint.start(true)
      await checkpoint.running
    }
    this.committer.commit()
    this.o.journal.close()
  }
}

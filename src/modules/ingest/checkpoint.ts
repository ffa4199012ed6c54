import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DedupCache } from './dedup-cache.ts'
import type { IngestConfig } from './ingest-config.ts'
import type { IngestMetrics } from './ingest-metrics.ts'
import type { Journal } from './journal.ts'
import type { PlanEffects } from './plan-effects.ts'
import { saveSeqStates } from './seq-state-repository.ts'

export interface CheckpointOptions {
  config: IngestConfig
  db: Kysely<Database>
  journal: Journal
  effects: PlanEffects
  cache: DedupCache
  metrics: IngestMetrics
  log: FastifyBaseLogger
  /** Runs when a checkpoint is over, written or not (admission may find room again). */
  onDone: () => void
}

/**
 * About once a second: archive objects, registry activity, then the dedup state — and only then
 * may the journal forget the records. A crash between checkpoints replays them; the stores are
 * idempotent and the dedup state is that of the last checkpoint, so nothing is lost or doubled.
 */
export class Checkpoint {
  /** The journal id up to which every record is stored (not yet settled: see `start`). */
  private storedUpTo = 0
  private settledId = 0
  private lastCheckpoint = 0
  private checkpointing: Promise<void> | undefined
  /** The error of the last failed checkpoint, until one succeeds. */
  failure: { error: Error; since: number } | null = null

  constructor(private readonly o: CheckpointOptions) {}

  /** The checkpoint being written, if one is. */
  get running(): Promise<void> | undefined {
    return this.checkpointing
  }

  /** The records up to `lastId` are stored (their dedup state is in the cache, unsaved). */
  stored(lastId: number): void {
    this.storedUpTo = Math.max(this.storedUpTo, lastId)
  }

  /**
   * The archive lines fill half their budget: checkpoint now, not at ARCHIVE_FLUSH_MS, so the
   * archive cadence never pauses a healthy intake. Not while checkpoints fail (they retry at the
   * usual period; intake pauses when the budget is full).
   */
  archiveFilling(): boolean {
    return (
      this.failure === null &&
      this.o.effects.archive.bufferedBytes >= this.o.config.ARCHIVE_BUFFER_MAX_BYTES / 2
    )
  }

  /**
   * Called between batches, when the dedup windows are exactly those of `storedUpTo`: what it
   * writes is taken synchronously here, and written while the next batches are stored (one
   * checkpoint at a time). A failed one gives everything back to the next.
   */
  start(force: boolean): void {
    if (this.checkpointing) return
    if (!force && Date.now() - this.lastCheckpoint < this.o.config.ARCHIVE_FLUSH_MS) return
    this.lastCheckpoint = Date.now()
    const { cache, journal } = this.o
    const upTo = this.storedUpTo
    // Grouped archive objects wait for their period: until then a checkpoint writes only registry
    // activity — no dedup state, no settling, since the journal must keep the unwritten lines.
    const full = force || this.o.effects.archive.due(Date.now())
    const taken = full ? cache.takeUnsaved() : undefined
    const work = this.o.effects.beginCheckpoint(full)
    this.checkpointing = (async () => {
      try {
        await work.write()
        if (!taken) return
        await saveSeqStates(this.o.db, taken.states)
        if (upTo > this.settledId) {
          journal.settle(upTo)
          this.settledId = upTo
        }
        this.failure = null
      } catch (error) {
        work.restore()
        if (taken) cache.giveBack(taken)
        const err = error instanceof Error ? error : new Error(String(error))
        this.failure ??= { error: err, since: Date.now() }
        this.o.metrics.storeErrors.inc()
        this.o.log.error({ err }, 'checkpoint failed; will retry')
      } finally {
        if (taken) cache.released()
        this.checkpointing = undefined
        this.o.onDone()
      }
    })()
  }
}

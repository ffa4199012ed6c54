import type { BatchStore } from './batch-store.ts'
import type { Checkpoint } from './checkpoint.ts'
import type { DedupCache } from './dedup-cache.ts'
import type { IngestConfig } from './ingest-config.ts'
import type { PendingQueue } from './pending-queue.ts'

export interface FlushLoopOptions {
  config: IngestConfig
  queue: PendingQueue
  store: BatchStore
  cache: DedupCache
  checkpoint: Checkpoint
  /** A batch is stored: admission may find room again. */
  onStored: () => void
  onIdle: () => void
  stopping: () => boolean
}

/**
 * The single flush loop: every INGEST_FLUSH_MS (or at once when a batch is full) it stores the
 * journaled messages batch by batch, and starts a checkpoint between batches when one is due.
 */
export class FlushLoop {
  private flushing = false
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly o: FlushLoopOptions) {}

  /** Whether the loop is storing batches now. */
  get running(): boolean {
    return this.flushing
  }

  schedule(delay: number): void {
    if (this.o.stopping() && delay > 0) return
    if (this.timer) {
      if (delay > 0) return
      clearTimeout(this.timer)
    }
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.run()
    }, delay)
  }

  /** Cancels the next scheduled run. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer)
  }

  /** Stores what is pending (and checks holes for expiry); no-op while already running. */
  async run(): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    const { queue, checkpoint } = this.o
    try {
      while (queue.waiting > 0 || this.o.cache.hasHoles) {
        const batch = queue.take(this.o.config.INGEST_BATCH_MAX)
        const stored = await this.o.store.storeWithRetry(batch)
        queue.finish(batch, stored)
        if (!stored) break
        this.o.onStored()
        checkpoint.start(checkpoint.archiveFilling())
        if (batch.length === 0) break
      }
      checkpoint.start(false)
    } finally {
      this.flushing = false
      this.o.onIdle()
      if (!this.o.stopping()) this.schedule(this.o.config.INGEST_FLUSH_MS)
    }
  }
}

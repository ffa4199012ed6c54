import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { Lru } from '../../platform/lru.ts'
import { loadSeqStates } from './seq-state-repository.ts'
import { type DigestBlock, SeqWindow, type SeqWindowState } from './seq-window.ts'

/** The dedup states a checkpoint saves, taken at a batch boundary (see DedupCache.takeUnsaved). */
export interface UnsavedWindows {
  states: { pk: number; state: SeqWindowState; blocks: DigestBlock[] }[]
  windows: Map<number, SeqWindow>
}

/**
 * The devices' dedup windows in memory: a bounded LRU loaded from the database on a miss, plus
 * the windows changed since the last checkpoint, pinned so that no eviction loses them. Also
 * which devices have holes (the flush loop runs for them to turn expired holes into gaps) and
 * the device ids of the primary keys it saw.
 */
export class DedupCache {
  private readonly windows: Lru<number, SeqWindow>
  private readonly deviceIds: Lru<number, string>
  private readonly holes = new Set<number>()
  /** Dedup windows changed since the last checkpoint: pinned here so no cache eviction loses them. */
  private unsaved = new Map<number, SeqWindow>()
  /** Those the running checkpoint is saving (pinned too, until it is done). */
  private saving: Map<number, SeqWindow> | undefined

  constructor(
    private readonly db: Kysely<Database>,
    private readonly windowSize: number,
    max: number,
  ) {
    this.windows = new Lru(max)
    this.deviceIds = new Lru(max)
  }

  /** Whether some device has holes still in their grace period. */
  get hasHoles(): boolean {
    return this.holes.size > 0
  }

  /** The set planFlush reads (devices with holes). */
  get devicesWithHoles(): Set<number> {
    return this.holes
  }

  async windowsOf(pks: number[]): Promise<Map<number, SeqWindow>> {
    const out = new Map<number, SeqWindow>()
    const missing: number[] = []
    for (const pk of pks) {
      const w = this.unsaved.get(pk) ?? this.saving?.get(pk) ?? this.windows.get(pk)
      if (w) out.set(pk, w)
      else missing.push(pk)
    }
    const states = await loadSeqStates(this.db, missing)
    for (const pk of missing) {
      const saved = states.get(pk)
      const w = SeqWindow.fromState(this.windowSize, saved?.state, saved?.blocks)
      this.windows.set(pk, w)
      out.set(pk, w)
    }
    return out
  }

  rememberDeviceIds(found: Map<string, number>): void {
    for (const [deviceId, pk] of found) this.deviceIds.set(pk, deviceId)
  }

  deviceIdOf(pk: number): string | undefined {
    return this.deviceIds.get(pk)
  }

  /** A batch with these windows is stored: the changed ones wait for the next checkpoint. */
  stored(windows: Map<number, SeqWindow>): void {
    for (const [pk, w] of windows) {
      if (w.dirty) this.unsaved.set(pk, w)
      if (w.missing.length > 0) this.holes.add(pk)
      else this.holes.delete(pk)
    }
  }

  /**
   * Takes the changed windows' states for a checkpoint, synchronously (between batches, when they
   * are exactly those of the batches stored). They stay pinned until `released`.
   */
  takeUnsaved(): UnsavedWindows {
    const windows = this.unsaved
    this.unsaved = new Map()
    const states = [...windows].map(([pk, w]) => ({ pk, state: w.toState(), blocks: w.takeChangedBlocks() }))
    for (const w of windows.values()) w.dirty = false
    this.saving = windows
    return { states, windows }
  }

  /** The checkpoint failed: its windows are saved again at the next, with their state as of then. */
  giveBack(taken: UnsavedWindows): void {
    for (const [pk, w] of taken.windows) if (!this.unsaved.has(pk)) this.unsaved.set(pk, w)
    // Their digest blocks were taken as saved: they are written with the next checkpoint.
    for (const { pk, blocks } of taken.states) taken.windows.get(pk)?.giveBackBlocks(blocks)
  }

  /** The checkpoint is over (saved or given back): its windows are no longer pinned by it. */
  released(): void {
    this.saving = undefined
  }

  /** Forgets what is cached about a device (it was deleted). */
  forget(pk: number): void {
    this.windows.delete(pk)
    this.unsaved.delete(pk)
    this.deviceIds.delete(pk)
    this.holes.delete(pk)
  }
}

import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { Datagram } from './datagram.ts'
import { fillGaps, type GapFill, type GapRecord, insertGaps, type LateSeq } from './energy-repository.ts'
import type { EnergyService } from './energy-service.ts'
import type { SeqAsk, TelemetryStore } from './store.ts'

/** The telemetry module's facade for the ingest: store datagrams, look up and record seq gaps. */
export class TelemetryService {
  constructor(
    private readonly db: Kysely<Database>,
    readonly store: TelemetryStore,
    readonly energy: EnergyService,
  ) {}

  /** Stores datagrams (idempotent) and marks the energy intervals they touch for recomputation. */
  async ingest(datagrams: Datagram[]): Promise<void> {
    if (datagrams.length === 0) return
    await this.energy.whileStoring(async () => {
      await this.store.write(datagrams)
      await this.energy.markDatagrams(datagrams)
    })
  }

  /** storedSeqs of many runs, in one lookup where the store can (TelemetryStore.storedSeqsMany). */
  storedSeqsMany(asks: readonly SeqAsk[]): Promise<Set<number>[]> {
    return this.store.storedSeqsMany(asks)
  }

  /** Late messages take their seqs out of the recorded gaps they fall in (see fillGaps). */
  fillGaps(late: LateSeq[]): Promise<GapFill[]> {
    return fillGaps(this.db, late)
  }

  /** Records seq gaps; energy is recomputed so that no integration bridges them. */
  async recordGaps(gaps: GapRecord[]): Promise<void> {
    await this.energy.whileStoring(async () => {
      await insertGaps(this.db, gaps)
      for (const g of gaps) await this.energy.markGap(g.devicePk, g.fromTs, g.toTs)
    })
  }
}

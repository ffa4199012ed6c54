import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { PeriodicTask } from '../../platform/periodic.ts'
import type { Datagram } from './datagram.ts'
import { dirtyRuns } from './dirty-runs.ts'
import { addInto, type EnergyInterval, emptyInterval, integrateEnergy } from './energy-integrator.ts'
import * as repo from './energy-repository.ts'
import type { TelemetryStore } from './store.ts'

/** How far before a range a sample may lie and still hold into it. */
const lookback = (t: DeviceTiming) => Math.max(t.maxGapMs, t.cadenceMs)

/** Marks recomputed per round: all their devices together, in a constant number of queries. */
const CHUNK = 500

export interface DeviceTiming {
  cadenceMs: number
  maxGapMs: number
}

/** A piece of a window computed from the samples (an edge that cuts a register). */
export interface EnergyPiece {
  from: number
  to: number
}

export interface EnergyOptions {
  db: Kysely<Database>
  store: TelemetryStore
  intervalMs: number
  /**
   * Per device: its sampling cadence, and the longest gap still continuous (ENERGY_MAX_GAP_S when
   * set, else 5 × the cadence); an entry for every pk asked.
   */
  timingMany: (devicePks: number[]) => Promise<Map<number, DeviceTiming>>
  /** INGEST_GAP_GRACE_MS: an interval ending less than this ago may still receive data. */
  graceMs?: number
  log: FastifyBaseLogger
  /** How long after an interval ends it is considered complete and computed in the background. */
  settleMs?: number
}

/**
 * Energy registers per device and interval, recomputed from the stored samples whenever samples
 * of an interval arrive (late, duplicated or out of order alike) or a seq gap is found in it, so
 * the result depends only on what is stored: the same datagrams twice or shuffled give the same kWh.
 */
export class EnergyService {
  /**
   * This process's batches between their rows and their marks (see `whileStoring`): a read of the
   * registers waits for them, or it could see the rows' samples but not yet their marks.
   */
  private readonly storing = new Set<Promise<unknown>>()
  private readonly periodic = new PeriodicTask(
    () => this.recompute(),
    (err) => this.o.log.warn({ err }, 'energy recompute failed; will retry'),
  )

  constructor(private readonly o: EnergyOptions) {}

  /**
   * Runs `store` (write a batch's rows, then mark their intervals) so that register reads that
   * start meanwhile wait for it: the rows are visible a moment before the marks, and a read in
   * between would recompute without them. Rows go first on purpose (a mark consumed before its
   * rows would leave a stale register). Other replicas' batches are not seen here.
   */
  async whileStoring<T>(store: () => Promise<T>): Promise<T> {
    const running = store()
    const settled = running.then(
      () => undefined,
      () => undefined,
    )
    this.storing.add(settled)
    try {
      return await running
    } finally {
      this.storing.delete(settled)
    }
  }

  /** Intervals a datagram's samples touch, plus the next one (the last sample holds into it). */
  async markDatagrams(datagrams: Datagram[]): Promise<void> {
    const marks = new Map<string, { pk: number; start: number }>()
    const I = this.o.intervalMs
    for (const d of datagrams) {
      if (!d.values.voltage_dc && !d.values.voltage_ac) continue
      const first = Math.floor((d.times[0] as number) / I) * I
      const last = Math.floor((d.times[d.times.length - 1] as number) / I) * I
      for (let s = first; s <= last + I; s += I) marks.set(`${d.devicePk}:${s}`, { pk: d.devicePk, start: s })
    }
    await this.persistMarks(marks)
  }

  /** A seq gap: every interval it spans is computed again so nothing bridges it. */
  async markGap(devicePk: number, fromTs: number, toTs: number): Promise<void> {
    const I = this.o.intervalMs
    const marks = new Map<string, { pk: number; start: number }>()
    for (let s = Math.floor(fromTs / I) * I; s <= toTs; s += I)
      marks.set(`${devicePk}:${s}`, { pk: devicePk, start: s })
    await this.persistMarks(marks)
  }

  /**
   * Writes every mark, also one this process wrote before: another replica (or a read served there)
   * may have consumed it meanwhile, and a mark skipped because "already written" left the samples
   * stored after that consumption out of the register for good. Refreshing marked_at is also what
   * keeps a mark whose interval is being recomputed right now (see clearDirty).
   */
  private async persistMarks(marks: Map<string, { pk: number; start: number }>) {
    if (marks.size === 0) return
    await repo.markDirty(this.o.db, [...marks.values()])
  }

  /** Recomputes dirty intervals (all complete ones, or every one of a device before it is read). */
  async recompute(options: { devicePk?: number; upTo?: number } = {}): Promise<number> {
    // In the background: intervals that ENDED at least settleMs ago (a start before now − interval
    // − settle), so an interval still filling is computed once when complete, not every round.
    const settleMs = this.o.settleMs ?? 60_000
    const before = options.upTo ?? Date.now() - this.o.intervalMs - settleMs
    // And, in the background, only intervals whose samples stopped arriving settleMs ago: late data
    // (a meter emptying its buffer after an outage) marks an old interval again with every datagram,
    // and recomputing it each time read its samples over and over. A read recomputes at once.
    const background = options.upTo === undefined && options.devicePk === undefined
    const quietForS = background ? settleMs / 1000 : undefined
    if (!background && this.storing.size > 0) await Promise.all(this.storing)
    let done = 0
    for (;;) {
      const dirty = await repo.dirtyIntervals(this.o.db, {
        before,
        devicePk: options.devicePk,
        quietForS,
        limit: CHUNK,
      })
      if (dirty.length === 0) return done
      // A datagram stored while these are recomputed marks its intervals again, refreshing
      // marked_at, so clearDirty keeps those marks for the next round.
      await this.recomputeMarks(dirty)
      await repo.clearDirty(this.o.db, dirty)
      done += dirty.length
      if (dirty.length < CHUNK) return done
    }
  }

  /** A chunk of marks of any number of devices, in a constant number of queries. */
  private async recomputeMarks(dirty: repo.DirtyMark[]): Promise<void> {
    const I = this.o.intervalMs
    const startsOf = new Map<number, number[]>()
    for (const r of dirty) {
      const starts = startsOf.get(r.device_pk) ?? []
      starts.push(new Date(r.start).getTime())
      startsOf.set(r.device_pk, starts)
    }
    const timings = await this.o.timingMany([...startsOf.keys()])
    const runs = [...startsOf].flatMap(([pk, starts]) => {
      const timing = timings.get(pk)
      if (timing === undefined) throw new Error(`no timing for device ${pk}`)
      return dirtyRuns(pk, starts, I, lookback(timing))
    })
    const samples = await this.o.store.powerSamplesMany(
      runs.map((r) => ({ devicePk: r.devicePk, start: r.from, stop: r.to })),
    )
    const rows = runs.flatMap((run, i) => {
      const timing = timings.get(run.devicePk) as DeviceTiming
      const computed = integrateEnergy(samples[i] ?? [], { intervalMs: I, ...timing })
      const byStart = new Map(computed.map((c) => [c.start, c]))
      return run.starts.map((start) => ({
        devicePk: run.devicePk,
        ...(byStart.get(start) ?? emptyInterval(start)),
      }))
    })
    await repo.upsertIntervals(this.o.db, I / 1000, rows)
  }

  /** Stored registers of a device in [start, stop), after bringing the dirty ones up to date. */
  async intervals(devicePk: number, start: number, stop: number): Promise<EnergyInterval[]> {
    await this.recompute({ devicePk, upTo: stop + this.o.intervalMs })
    return repo.readIntervals(
      this.o.db,
      devicePk,
      Math.floor(start / this.o.intervalMs) * this.o.intervalMs,
      stop,
    )
  }

  /** The registers of arbitrary pieces of one device's time, computed from the samples. */
  async pieces(devicePk: number, pieces: EnergyPiece[]): Promise<EnergyInterval[]> {
    if (pieces.length === 0) return []
    const timing = (await this.o.timingMany([devicePk])).get(devicePk) as DeviceTiming
    const back = lookback(timing)
    const samples = await this.o.store.powerSamplesMany(
      pieces.map((p) => ({ devicePk, start: p.from - back, stop: p.to + timing.maxGapMs + 1 })),
    )
    return pieces.map((p, i) => {
      const options = { ...timing, intervalMs: p.to - p.from, clip: p }
      const rows = integrateEnergy(samples[i] ?? [], options).filter((r) => r.covered_ms > 0)
      const sum = emptyInterval(p.from)
      for (const r of rows) addInto(sum, r)
      return sum
    })
  }

  /**
   * The cumulative registers of a device at an instant, like reading the meter's display: every
   * stored interval before the one holding `at`, plus that one up to `at` from the samples.
   */
  async registersAt(devicePk: number, at: number): Promise<EnergyInterval> {
    const I = this.o.intervalMs
    const cut = Math.floor(at / I) * I
    await this.recompute({ devicePk, upTo: cut })
    const whole = await repo.sumBefore(this.o.db, devicePk, cut)
    if (at > cut) addInto(whole, (await this.pieces(devicePk, [{ from: cut, to: at }]))[0] as EnergyInterval)
    return whole
  }

  /** The time ranges of a device's recorded seq gaps touching [start, stop): data may still come. */
  openGaps(devicePk: number, start: number, stop: number): Promise<{ from: number; to: number }[]> {
    return repo.gapBreaks(this.o.db, [{ devicePk, from: start, to: stop }]).then((r) => r[0] ?? [])
  }

  /** How long after its end an interval may still receive data in the ordinary course. */
  get graceMs(): number {
    return this.o.graceMs ?? 30_000
  }

  /** The register interval, ms. */
  get intervalMs(): number {
    return this.o.intervalMs
  }

  start(everyMs: number): void {
    this.periodic.start(everyMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}

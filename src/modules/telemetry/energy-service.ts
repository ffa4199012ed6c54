import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { PeriodicTask } from '../../platform/periodic.ts'
import type { Datagram } from './datagram.ts'
import { type EnergyInterval, emptyInterval, integrateEnergy } from './energy-integrator.ts'
import * as repo from './energy-repository.ts'
import type { TelemetryStore } from './store.ts'

export interface EnergyOptions {
  db: Kysely<Database>
  store: TelemetryStore
  intervalMs: number
  /** ENERGY_MAX_GAP_S when set; else 5 × the device's sampling cadence. */
  maxGapMs: (devicePk: number) => Promise<number>
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
  /** Marks already persisted and not yet recomputed: no need to write them again. */
  private readonly known = new Set<string>()
  private readonly periodic = new PeriodicTask(
    () => this.recompute(),
    (err) => this.o.log.warn({ err }, 'energy recompute failed; will retry'),
  )

  constructor(private readonly o: EnergyOptions) {}

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

  private async persistMarks(marks: Map<string, { pk: number; start: number }>) {
    const fresh = [...marks].filter(([key]) => !this.known.has(key))
    if (fresh.length === 0) return
    await repo.markDirty(
      this.o.db,
      fresh.map(([, m]) => m),
    )
    for (const [key] of fresh) this.known.add(key)
  }

  /** Recomputes dirty intervals (all complete ones, or every one of a device before it is read). */
  async recompute(options: { devicePk?: number; upTo?: number } = {}): Promise<number> {
    const before = options.upTo ?? Date.now() - (this.o.settleMs ?? 60_000)
    let done = 0
    for (;;) {
      const dirty = await repo.dirtyIntervals(this.o.db, { before, devicePk: options.devicePk, limit: 500 })
      if (dirty.length === 0) return done
      const byDevice = new Map<number, typeof dirty>()
      for (const row of dirty) byDevice.set(row.device_pk, [...(byDevice.get(row.device_pk) ?? []), row])
      for (const [pk, rows] of byDevice) {
        await this.recomputeDevice(
          pk,
          rows.map((r) => new Date(r.start).getTime()),
        )
      }
      await repo.clearDirty(this.o.db, dirty)
      for (const r of dirty) this.known.delete(`${r.device_pk}:${new Date(r.start).getTime()}`)
      done += dirty.length
      if (dirty.length < 500) return done
    }
  }

  private async recomputeDevice(pk: number, starts: number[]): Promise<void> {
    const I = this.o.intervalMs
    const maxGapMs = await this.o.maxGapMs(pk)
    const from = Math.min(...starts)
    const to = Math.max(...starts) + I
    // The sample before an interval may hold into it, so read up to one gap earlier.
    const samples = await this.o.store.powerSamples(pk, from - maxGapMs, to)
    const breaks = await repo.gapBreaks(this.o.db, pk, from - maxGapMs, to)
    const wanted = new Set(starts)
    const computed = integrateEnergy(samples, { intervalMs: I, maxGapMs, breaks })
    const rows: EnergyInterval[] = starts.map(
      (start) => computed.find((c) => c.start === start) ?? emptyInterval(start),
    )
    await repo.upsertIntervals(
      this.o.db,
      pk,
      I / 1000,
      rows.filter((r) => wanted.has(r.start)),
    )
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

  start(everyMs: number): void {
    this.periodic.start(everyMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}

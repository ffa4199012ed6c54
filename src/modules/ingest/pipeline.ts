import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { measurementCount } from '../telemetry/index.ts'
import { DeviceRateLimiter } from './device-rate.ts'
import { type FlushPlan, type PendingRecord, planFlush, preParse } from './flush-plan.ts'
import { confirmGaps } from './gap-claims.ts'
import type { IngestConfig } from './ingest-config.ts'
import type { IngestMetrics } from './ingest-metrics.ts'
import type { Journal } from './journal.ts'
import { Lru } from './lru.ts'
import { type ParseLimits, parseTopic } from './parse-message.ts'
import type { PlanEffects } from './plan-effects.ts'
import { PoisonGuard, SPLIT_AFTER } from './poison.ts'
import { insertQuarantined } from './quarantine-repository.ts'
import { RateLimitedLog } from './rate-limited-log.ts'
import { loadSeqStates, saveSeqStates } from './seq-state-repository.ts'
import { SeqWindow } from './seq-window.ts'

type Done = (error?: Error) => void

/**
 * When `accept` calls `done`: `durable` once the message's journal group is committed (end of this
 * event-loop turn); `now` at once, for a caller that holds the acknowledgement back itself until
 * the commit (a corked socket, see `afterCommit`).
 */
export type AckTiming = 'durable' | 'now'

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
}

const MAX_BACKOFF_MS = 5000
/** A commit within this long of the previous one means load: the next group waits COMMIT_DELAY_MS. */
const COMMIT_BUSY_MS = 5
const COMMIT_DELAY_MS = 2
/** What a pending message costs besides its payload and topic (record object, array slot), roughly. */
const RECORD_OVERHEAD = 160
const recordBytes = (r: { topic: string; payload: Buffer }) =>
  r.payload.length + r.topic.length + RECORD_OVERHEAD

/**
 * The ingest's core. `accept` journals a message and acknowledges it at once (the journal makes
 * it durable); a single flush loop then stores journaled messages in batches: parse, dedup,
 * archive, time series, registry, side effects, and the dedup state last — so a crash at any point
 * replays the batch from the journal against the state before it. A failing store is retried with
 * backoff while intake pauses (acknowledgements are held, not buffered).
 *
 * Admission is bounded by memory, not by the archive's cadence: intake pauses when the messages
 * journaled but not yet stored reach INGEST_MAX_PENDING_BYTES (or INGEST_MAX_INFLIGHT of them), or
 * when the archive lines not yet written reach ARCHIVE_BUFFER_MAX_BYTES — a budget of their own,
 * which a healthy pipeline never fills: past half of it a checkpoint starts at once instead of
 * waiting for ARCHIVE_FLUSH_MS. So a database or archive outage pauses intake with bounded memory,
 * while a healthy pipeline admits as fast as it stores.
 */
export class IngestPipeline {
  private pending: PendingRecord[] = []
  private readonly held: { topic: string; payload: Buffer; done: Done }[] = []
  private heldBytes = 0
  /** Acknowledgements waiting for the journal commit, and what runs right after it. */
  private awaitingCommit: Done[] = []
  private commitHooks: ((error?: Error) => void)[] = []
  private commitScheduled = false
  private lastCommitAt = Number.NEGATIVE_INFINITY
  private inFlush = 0
  /** Memory held by `pending` and the batch in flush (see recordBytes). */
  private pendingBytes = 0
  private inFlushBytes = 0
  private flushing = false
  private timer: NodeJS.Timeout | undefined
  private stopping = false
  private readonly windows: Lru<number, SeqWindow>
  private readonly deviceIds: Lru<number, string>
  private readonly holes = new Set<number>()
  private readonly perMinute = new Map<number, number>()
  private storedUpTo = 0
  private settledId = 0
  private lastCheckpoint = 0
  /** Dedup windows changed since the last checkpoint: pinned here so no cache eviction loses them. */
  private unsaved = new Map<number, SeqWindow>()
  /** Those the running checkpoint is saving (pinned too, until it is done). */
  private saving: Map<number, SeqWindow> | undefined
  private checkpointing: Promise<void> | undefined
  /** The error of the last failed checkpoint, until one succeeds. */
  checkpointFailure: { error: Error; since: number } | null = null
  private readonly rejectLog: RateLimitedLog
  /** INGEST_DEVICE_RATE_MAX per device, checked before journaling; undefined when 0 (off). */
  private readonly rate: DeviceRateLimiter | undefined
  /** The error of the last failed store attempt, until a batch succeeds again. */
  failure: { error: Error; since: number } | null = null
  private readonly guard: PoisonGuard

  constructor(private readonly o: PipelineOptions) {
    this.windows = new Lru(o.config.DEVICE_CACHE_MAX)
    this.deviceIds = new Lru(o.config.DEVICE_CACHE_MAX)
    this.rejectLog = new RateLimitedLog(o.log, 10_000)
    const rateMax = o.config.INGEST_DEVICE_RATE_MAX
    this.rate = rateMax > 0 ? new DeviceRateLimiter(rateMax, o.config.DEVICE_CACHE_MAX) : undefined
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

  /** Replays what an earlier run journaled but did not store, then starts the flush loop. */
  start(replayed: PendingRecord[]): void {
    if (replayed.length > 0) this.o.log.info({ records: replayed.length }, 'replaying ingest journal')
    this.pending.push(...replayed.map((r) => ({ ...r, replayed: true })))
    for (const r of replayed) this.pendingBytes += recordBytes(r)
    this.schedule(0)
  }

  /** Journaled messages not yet stored, including archive lines not yet written. */
  get inflight(): number {
    return this.pending.length + this.inFlush + this.o.effects.archive.buffered
  }

  /** Sets the gauges of what is in flight (also while a store keeps failing). */
  updateGauges(): void {
    const m = this.o.metrics
    m.inflight.set(this.inflight)
    m.bufferedBytes.set({ what: 'pending' }, this.pendingBytes + this.inFlushBytes)
    m.bufferedBytes.set({ what: 'archive' }, this.o.effects.archive.bufferedBytes)
    m.bufferedBytes.set({ what: 'held' }, this.heldBytes)
  }

  /**
   * Whether intake may journal another message: the unstored messages and the unwritten archive
   * lines are within their memory budgets (archive lines do not count against the first).
   */
  private hasRoom(): boolean {
    const c = this.o.config
    return (
      this.pending.length + this.inFlush < c.INGEST_MAX_INFLIGHT &&
      this.pendingBytes + this.inFlushBytes < c.INGEST_MAX_PENDING_BYTES &&
      this.o.effects.archive.bufferedBytes < c.ARCHIVE_BUFFER_MAX_BYTES
    )
  }

  /** Takes one message from a broker (or a device on the embedded broker); `done` acknowledges it. */
  accept(topic: string, payload: Buffer, done: Done, ack: AckTiming = 'durable'): void {
    if (this.stopping) return // left unacknowledged: the broker delivers it again after the restart
    this.o.metrics.received.inc()
    if (payload.length > this.o.limits.maxBytes) {
      // Same verdict as parsing would give (INGEST_MAX_BYTES), without journaling the bulk first.
      this.o.metrics.rejected.inc({ reason: 'too_large' })
      const detail = `${payload.length} bytes > ${this.o.limits.maxBytes}`
      const fields = { reason: 'too_large', device_id: parseTopic(topic)?.deviceId, detail }
      this.rejectLog.warn('too_large', fields, 'message rejected')
      done()
      return
    }
    const deviceId = this.rate && parseTopic(topic)?.deviceId
    if (deviceId && !this.rate?.take(deviceId)) {
      // Dropped before the journal, and acknowledged: the device must not resend it.
      this.o.metrics.rejected.inc({ reason: 'rate_limited' })
      this.rejectLog.warn('rate_limited', { reason: 'rate_limited', device_id: deviceId }, 'message rejected')
      done()
      return
    }
    if (this.held.length > 0 || !this.hasRoom()) {
      // A copy: the payload may be a view of a socket's read buffer, not to be held for long.
      this.held.push({ topic, payload: Buffer.from(payload), done })
      this.heldBytes += payload.length + topic.length + RECORD_OVERHEAD
      this.o.metrics.paused.set(1)
      return
    }
    this.journalAndAck(topic, payload, done, ack)
  }

  private journalAndAck(topic: string, payload: Buffer, done: Done, ack: AckTiming): void {
    const receivedAt = Date.now()
    const record = this.o.journal.append(topic, payload, receivedAt)
    const pending = { id: record.id, topic, payload: record.payload, receivedAt }
    this.pending.push(pending)
    this.pendingBytes += recordBytes(pending)
    if (ack === 'now') done()
    else this.awaitingCommit.push(done)
    this.scheduleCommit()
    if (this.pending.length >= this.o.config.INGEST_BATCH_MAX) this.schedule(0)
  }

  /**
   * Runs `hook` right after the next journal commit, with the commit's error if it failed: the
   * intake holds a broker connection's acknowledgements back (corked) until then.
   */
  afterCommit(hook: (error?: Error) => void): void {
    this.commitHooks.push(hook)
    this.scheduleCommit()
  }

  private scheduleCommit(): void {
    if (this.commitScheduled) return
    this.commitScheduled = true
    // After every message that arrived in this event-loop turn: one write for all of them. Under
    // load, when messages trickle in one per turn (many devices, each message its own packet), the
    // group stays open a little longer so that it still holds many (as commit_delay does for
    // PostgreSQL's WAL): fewer writes here, and fewer, fuller PUBACK writes to the broker.
    if (performance.now() - this.lastCommitAt < COMMIT_BUSY_MS)
      setTimeout(() => this.commit(), COMMIT_DELAY_MS)
    else setImmediate(() => this.commit())
  }

  /** Writes the journal's open group, then lets its acknowledgements go (or fails them). */
  private commit(): void {
    this.commitScheduled = false
    this.lastCommitAt = performance.now()
    const dones = this.awaitingCommit
    const hooks = this.commitHooks
    this.awaitingCommit = []
    this.commitHooks = []
    let failed: Error | undefined
    try {
      this.o.journal.commit()
    } catch (error) {
      failed = error instanceof Error ? error : new Error(String(error))
      this.o.log.error({ err: failed }, 'ingest journal write failed; the messages are not acknowledged')
    }
    for (const hook of hooks) hook(failed)
    for (const done of dones) done(failed)
  }

  /** Lets held messages in while there is room. */
  private release(): void {
    let released = 0
    while (this.held.length > 0 && this.hasRoom()) {
      const next = this.held.shift() as { topic: string; payload: Buffer; done: Done }
      this.heldBytes -= next.payload.length + next.topic.length + RECORD_OVERHEAD
      this.journalAndAck(next.topic, next.payload, next.done, 'durable')
      released++
    }
    // Their connections wait for these acknowledgements: commit now, not at the end of the turn.
    if (released > 0) this.commit()
    if (this.held.length === 0) this.o.metrics.paused.set(0)
  }

  private schedule(delay: number): void {
    if (this.stopping && delay > 0) return
    if (this.timer) {
      if (delay > 0) return
      clearTimeout(this.timer)
    }
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flushLoop()
    }, delay)
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.pending.length > 0 || this.holes.size > 0) {
        const batch = this.pending.splice(0, this.o.config.INGEST_BATCH_MAX)
        let bytes = 0
        for (const r of batch) bytes += recordBytes(r)
        this.pendingBytes -= bytes
        this.inFlush = batch.length
        this.inFlushBytes = bytes
        const stored = await this.storeWithRetry(batch)
        this.inFlush = 0
        this.inFlushBytes = 0
        if (!stored) {
          this.pending.unshift(...batch)
          this.pendingBytes += bytes
          break
        }
        this.release()
        this.startCheckpoint(this.archiveFilling())
        if (batch.length === 0) break
      }
      this.startCheckpoint(false)
    } finally {
      this.flushing = false
      this.updateGauges()
      if (!this.stopping) this.schedule(this.o.config.INGEST_FLUSH_MS)
    }
  }

  /**
   * Plans one batch once and stores it, retrying the same plan with backoff (executing a plan is
   * idempotent). A device deleted meanwhile (foreign key violation) makes it plan afresh.
   * Returns false only when stopping interrupts the retries.
   */
  private async storeWithRetry(batch: PendingRecord[]): Promise<boolean> {
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
        preParse(this.pending.slice(0, this.o.config.INGEST_BATCH_MAX), Date.now(), this.o.limits)
        await executing
        this.o.effects.absorb(plan)
        for (const [pk, w] of plan.windows) if (w.dirty) this.unsaved.set(pk, w)
        this.record(plan, performance.now() - started)
        this.storedUpTo = Math.max(this.storedUpTo, plan.lastId)
        this.failure = null
        return true
      } catch (error) {
        if ((error as { code?: string }).code === '23503' && plan) {
          for (const pk of plan.windows.keys()) this.forget(pk)
          plan = undefined
        }
        this.o.metrics.storeErrors.inc()
        this.updateGauges()
        const err = error instanceof Error ? error : new Error(String(error))
        const signature = `${(error as { code?: string }).code}:${err.message}`
        same = signature === lastFailure && plan ? same + 1 : 1
        lastFailure = signature
        this.failure ??= { error: err, since: Date.now() }
        this.o.log.error(
          { err, backoff_ms: backoff, batch: batch.length },
          'storing a batch failed; retrying',
        )
        if (this.stopping) return false
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
      }
    }
  }

  /**
   * The archive lines fill half their budget: checkpoint now, not at ARCHIVE_FLUSH_MS, so the
   * archive cadence never pauses a healthy intake. Not while checkpoints fail (they retry at the
   * usual period; intake pauses when the budget is full).
   */
  private archiveFilling(): boolean {
    return (
      this.checkpointFailure === null &&
      this.o.effects.archive.bufferedBytes >= this.o.config.ARCHIVE_BUFFER_MAX_BYTES / 2
    )
  }

  /**
   * About once a second: archive objects, registry activity, then the dedup state — and only then
   * may the journal forget the records. A crash between checkpoints replays them; the stores are
   * idempotent and the dedup state is that of the last checkpoint, so nothing is lost or doubled.
   *
   * Called between batches, when the dedup windows are exactly those of `storedUpTo`: what it
   * writes is taken synchronously here, and written while the next batches are stored (one
   * checkpoint at a time). A failed one gives everything back to the next.
   */
  private startCheckpoint(force: boolean): void {
    if (this.checkpointing) return
    if (!force && Date.now() - this.lastCheckpoint < this.o.config.ARCHIVE_FLUSH_MS) return
    this.lastCheckpoint = Date.now()
    const upTo = this.storedUpTo
    const saving = this.unsaved
    this.unsaved = new Map()
    const states = [...saving].map(([pk, w]) => ({ pk, state: w.toState() }))
    for (const w of saving.values()) w.dirty = false
    const work = this.o.effects.beginCheckpoint()
    this.saving = saving
    this.checkpointing = (async () => {
      try {
        await work.write()
        await saveSeqStates(this.o.db, states)
        if (upTo > this.settledId) {
          this.o.journal.settle(upTo)
          this.settledId = upTo
        }
        this.checkpointFailure = null
      } catch (error) {
        work.restore()
        // Saved again at the next checkpoint, with their state as of then.
        for (const [pk, w] of saving) if (!this.unsaved.has(pk)) this.unsaved.set(pk, w)
        const err = error instanceof Error ? error : new Error(String(error))
        this.checkpointFailure ??= { error: err, since: Date.now() }
        this.o.metrics.storeErrors.inc()
        this.o.log.error({ err }, 'checkpoint failed; will retry')
      } finally {
        this.saving = undefined
        this.checkpointing = undefined
        this.release()
      }
    })()
  }

  private plan(batch: PendingRecord[]): Promise<FlushPlan> {
    return planFlush(batch, {
      now: Date.now(),
      limits: this.o.limits,
      graceMs: this.o.config.INGEST_GAP_GRACE_MS,
      holes: this.holes,
      resolve: async (ids) => {
        const found = await this.o.lookup(ids)
        for (const [deviceId, pk] of found) this.deviceIds.set(pk, deviceId)
        return found
      },
      windowsOf: (pks) => this.windowsOf(pks),
      deviceIdOf: (pk) => this.deviceIds.get(pk),
      confirmGaps: (pk, ranges) => confirmGaps(this.o.db, pk, ranges, this.o.config.MQTT_CLIENT_ID),
      onError: (err, deviceId) =>
        this.o.log.warn({ err, device_id: deviceId }, 'gap check failed; retried later'),
    })
  }

  private async windowsOf(pks: number[]): Promise<Map<number, SeqWindow>> {
    const out = new Map<number, SeqWindow>()
    const missing: number[] = []
    for (const pk of pks) {
      const w = this.unsaved.get(pk) ?? this.saving?.get(pk) ?? this.windows.get(pk)
      if (w) out.set(pk, w)
      else missing.push(pk)
    }
    const states = await loadSeqStates(this.o.db, missing)
    for (const pk of missing) {
      const w = SeqWindow.fromState(this.o.config.INGEST_DEDUP_WINDOW, states.get(pk))
      this.windows.set(pk, w)
      out.set(pk, w)
    }
    return out
  }

  private record(plan: FlushPlan, ms: number): void {
    const m = this.o.metrics
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
    for (const [pk, w] of plan.windows) {
      if (w.missing.length > 0) this.holes.add(pk)
      else this.holes.delete(pk)
    }
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

  /** Forgets what is cached about a device (it was deleted). */
  forget(pk: number): void {
    this.windows.delete(pk)
    this.unsaved.delete(pk)
    this.deviceIds.delete(pk)
    this.holes.delete(pk)
  }

  /** Stops taking messages and stores everything journaled, within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true
    if (this.timer) clearTimeout(this.timer)
    const deadline = Date.now() + timeoutMs
    while ((this.inflight > 0 || this.flushing || this.checkpointing) && Date.now() < deadline) {
      if (!this.flushing) void this.flushLoop()
      // The records are stored; what remains is the checkpoint that lets the journal forget them.
      if (!this.flushing && this.pending.length === 0 && this.inFlush === 0) this.startCheckpoint(true)
      await new Promise((r) => setTimeout(r, 20))
    }
    await this.checkpointing
    if (!this.flushing) {
      this.startCheckpoint(true)
      await this.checkpointing
    }
    this.commit()
    this.o.journal.close()
  }
}

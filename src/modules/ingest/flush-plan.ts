import { isUtf8 } from 'node:buffer'
import { crc32 } from 'node:zlib'
import { BINARY_TELEMETRY_MARKER } from '../../protocol/index.ts'
import { type Datagram, datagramOf } from '../telemetry/index.ts'
import type { ParseLimits } from './parse-message.ts'
import { type Category, type ParsedMessage, parseMessage, Rejected } from './parse-message.ts'
import { type MissingRange, rangeLength, type SeqWindow } from './seq-window.ts'

/** A journaled message waiting to be stored. */
export interface PendingRecord {
  id: number
  topic: string
  payload: Buffer
  receivedAt: number
  /** Read back from the journal at start: it may have been stored before the crash. */
  replayed?: boolean
  /** Its parse, done ahead while the previous batch was in the database (see preParse). */
  parsed?: ParsedMessage | Rejected
}

/**
 * Parses records ahead of their batch (pure: no dedup state is touched), so that the flush loop
 * does this CPU work while the previous batch is in the database; planFlush then reuses it.
 */
export function preParse(records: PendingRecord[], now: number, limits: ParseLimits): void {
  for (const record of records) record.parsed ??= parseMessage(record.topic, record.payload, now, limits)
}

export interface DeviceRef {
  pk: number
  deviceId: string
}

/** Everything one batch must write, computed once; executing it is idempotent and retried. */
export interface FlushPlan {
  lastId: number
  size: number
  accepted: Map<Category, number>
  /** The envelope ts of each accepted message, for the end-to-end lag histogram. */
  messageTimes: number[]
  duplicates: number
  /** Messages with a seq already seen but other content: kept, counted (ingest_seq_conflicts_total). */
  conflicts: number
  rejected: Rejected[]
  /** Messages behind their device's window (late): they may fill a gap already recorded. */
  late: { pk: number; deviceId: string; seq: number; ts: number }[]
  /** Telemetry refused for a unit that does not fit its type (archived, alerted). */
  badUnits: { pk: number; deviceId: string; detail: string }[]
  datagrams: Datagram[]
  /**
   * Archive lines with the journal id and arrival time of their message; a line is its parts (no
   * copy of the payload until the archive object is assembled).
   */
  archive: { id: number; deviceId: string; category: Category; line: Buffer[]; receivedAt: number }[]
  activity: Map<
    number,
    { devicePk: number; lastSeen: Date; fwVersion?: string; connection?: 'online' | 'offline' }
  >
  acks: { deviceId: string; ack: Extract<ParsedMessage, { category: 'command_ack' }>['ack'] }[]
  otas: { deviceId: string; ota: Extract<ParsedMessage, { category: 'ota_status' }>['ota'] }[]
  hellos: { deviceId: string; fwVersion: string; uptimeS: number }[]
  gaps: (MissingRange & DeviceRef & { count: number })[]
  windows: Map<number, SeqWindow>
  touched: Set<number>
}

export interface PlanContext {
  now: number
  limits: ParseLimits
  graceMs: number
  /** Registered devices among the batch's ids (after the unknown-device policy ran). */
  resolve: (deviceIds: string[]) => Promise<Map<string, number>>
  /** The dedup windows of these devices (cached or loaded). */
  windowsOf: (pks: number[]) => Promise<Map<number, SeqWindow>>
  /** Devices with holes still inside their grace period, to be checked for expiry. */
  holes: Set<number>
  deviceIdOf: (pk: number) => string | undefined
  /**
   * Keeps the parts of expired holes that are still gaps across replicas, for every device at once
   * (see gap-claims.ts): per device its gaps, or the error of its check.
   */
  confirmGaps?: (expired: Map<number, MissingRange[]>) => Promise<Map<number, MissingRange[] | Error>>
  /** A device's gap check failed (retried with the next batch). */
  onError?: (error: unknown, deviceId: string | undefined) => void
}

interface Parsed {
  message: ParsedMessage
  record: PendingRecord
}
interface BadUnit {
  rejected: Rejected
  record: PendingRecord
}

/** Parses, resolves and deduplicates a batch, and gathers what must be stored. */
export async function planFlush(batch: PendingRecord[], ctx: PlanContext): Promise<FlushPlan> {
  const plan: FlushPlan = {
    lastId: batch.length > 0 ? (batch[batch.length - 1] as PendingRecord).id : 0,
    size: batch.length,
    accepted: new Map(),
    messageTimes: [],
    duplicates: 0,
    conflicts: 0,
    rejected: [],
    late: [],
    badUnits: [],
    datagrams: [],
    archive: [],
    activity: new Map(),
    acks: [],
    otas: [],
    hellos: [],
    gaps: [],
    windows: new Map(),
    touched: new Set(),
  }
  const parsed: Parsed[] = []
  const badUnits: BadUnit[] = []
  for (const record of batch) {
    const result = record.parsed ?? parseMessage(record.topic, record.payload, ctx.now, ctx.limits)
    if (result instanceof Rejected) plan.rejected.push(result)
    else parsed.push({ message: result, record })
    if (result instanceof Rejected && result.envelope) badUnits.push({ rejected: result, record })
  }
  // Plain loops, not map/filter/spread: `badUnits` is empty in almost every batch, and the array
  // builtins inlined for one elements kind were deoptimised ("wrong map") and planFlush compiled
  // again whenever a batch brought the other (a V8 log showed five compilations in one run).
  const ids = new Set<string>()
  for (let i = 0; i < parsed.length; i++) ids.add((parsed[i] as Parsed).message.deviceId)
  for (let i = 0; i < badUnits.length; i++) ids.add((badUnits[i] as BadUnit).rejected.deviceId as string)
  const pks = await ctx.resolve([...ids])
  const known: Parsed[] = []
  const knownPks = new Set<number>()
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i] as Parsed
    const pk = pks.get(p.message.deviceId)
    if (pk === undefined) {
      plan.rejected.push(new Rejected('unknown_device', 'device is not registered', p.message.deviceId))
      continue
    }
    known.push(p)
    knownPks.add(pk)
  }
  for (let i = 0; i < badUnits.length; i++) {
    const pk = pks.get((badUnits[i] as BadUnit).rejected.deviceId as string)
    if (pk !== undefined) knownPks.add(pk)
  }
  const windows = await ctx.windowsOf([...knownPks])
  plan.windows = windows
  for (const { rejected, record } of badUnits) badUnit(plan, rejected, record, pks, windows, ctx.now)

  for (const { message, record } of known) {
    const pk = pks.get(message.deviceId) as number
    const window = windows.get(pk) as SeqWindow
    plan.touched.add(pk)
    if (message.category === 'status' && message.status === 'online') window.noteOnline()
    if (message.category === 'hello') window.noteUptime(message.uptimeS)
    const v1 = message.category === 'telemetry' && message.v1
    const verdict =
      message.seq !== null && !v1
        ? window.check(message.seq, message.ts, crc32(record.payload), ctx.now)
        : 'accept'
    if (verdict === 'duplicate') {
      plan.duplicates++
      // Replayed after a crash, a "copy" may be the very message whose archive line was not yet
      // written: archive it again rather than lose it (the store is idempotent, the archive appends).
      if (record.replayed) archiveLine(plan, message, record)
      continue
    }
    if (verdict === 'conflict' || window.seenOther) plan.conflicts++
    if (verdict === 'late' && message.seq !== null)
      plan.late.push({ pk, deviceId: message.deviceId, seq: message.seq, ts: message.ts })
    take(plan, message, record, pk)
  }

  // The windows above have taken this batch's seqs: from here on nothing may throw (a retry would
  // plan again and find the batch's messages "duplicates"). A device whose gap check fails keeps
  // its expired holes for the next batch.
  const expired = new Map<number, MissingRange[]>()
  for (const pk of new Set([...plan.touched, ...ctx.holes])) {
    try {
      const window = windows.get(pk) ?? (await ctx.windowsOf([pk])).get(pk)
      if (!window) continue
      plan.windows.set(pk, window)
      const ranges = window.takeExpired(ctx.now, ctx.graceMs)
      if (ctx.deviceIdOf(pk) && ranges.length > 0) expired.set(pk, ranges)
    } catch (error) {
      ctx.onError?.(error, ctx.deviceIdOf(pk))
    }
  }
  if (expired.size === 0) return plan
  let confirmed: Map<number, MissingRange[] | Error>
  try {
    confirmed = ctx.confirmGaps ? await ctx.confirmGaps(expired) : expired
  } catch (error) {
    confirmed = new Map(
      [...expired.keys()].map((pk) => [pk, error instanceof Error ? error : new Error(String(error))]),
    )
  }
  for (const [pk, ranges] of expired) {
    const deviceId = ctx.deviceIdOf(pk) as string
    const gaps = confirmed.get(pk) ?? []
    if (gaps instanceof Error) {
      // Its expired holes wait for the next batch.
      plan.windows.get(pk)?.missing.unshift(...ranges)
      ctx.onError?.(gaps, deviceId)
      continue
    }
    for (const range of gaps) plan.gaps.push({ ...range, pk, deviceId, count: rangeLength(range) })
  }
  return plan
}

/** Adds one accepted message to the plan. */
function take(plan: FlushPlan, message: ParsedMessage, record: PendingRecord, pk: number): void {
  plan.accepted.set(message.category, (plan.accepted.get(message.category) ?? 0) + 1)
  plan.messageTimes.push(message.ts)
  archiveLine(plan, message, record)

  const seen = plan.activity.get(pk) ?? { devicePk: pk, lastSeen: new Date(record.receivedAt) }
  if (record.receivedAt > seen.lastSeen.getTime()) seen.lastSeen = new Date(record.receivedAt)
  seen.connection = message.category === 'status' ? message.status : 'online'
  plan.activity.set(pk, seen)

  switch (message.category) {
    case 'telemetry':
      plan.datagrams.push(datagramOf(pk, message.deviceId, storedSeq(message, record), message.samples))
      break
    case 'hello':
      seen.fwVersion = message.fwVersion
      plan.hellos.push({ deviceId: message.deviceId, fwVersion: message.fwVersion, uptimeS: message.uptimeS })
      break
    case 'command_ack':
      plan.acks.push({ deviceId: message.deviceId, ack: message.ack })
      break
    case 'ota_status':
      plan.otas.push({ deviceId: message.deviceId, ota: message.ota })
      break
    case 'status':
      break
  }
}

/**
 * The seq a datagram is stored under (its key is device, first sample time, seq). A v1 message has
 * none and is never deduplicated: it gets a negative one of its own, from its arrival (time and
 * journal id, both replayed unchanged after a crash), so v1 messages sharing a timestamp never
 * overwrite each other while a replay of the same record still lands on the same key.
 */
function storedSeq(message: ParsedMessage, record: PendingRecord): number {
  if (message.seq !== null) return message.seq
  return -(record.receivedAt * 4096 + (record.id % 4096)) - 1
}

/** A refused unit: the message arrived (no seq gap), its raw line is archived, an alert is raised. */
function badUnit(
  plan: FlushPlan,
  rejected: Rejected,
  record: PendingRecord,
  pks: Map<string, number>,
  windows: Map<number, SeqWindow>,
  now: number,
): void {
  const deviceId = rejected.deviceId as string
  const pk = pks.get(deviceId)
  const envelope = rejected.envelope
  if (pk === undefined || !envelope) return
  if (windows.get(pk)?.check(envelope.seq, envelope.ts, crc32(record.payload), now) === 'duplicate') return
  plan.touched.add(pk)
  plan.badUnits.push({ pk, deviceId, detail: rejected.detail })
  plan.archive.push({
    id: record.id,
    deviceId,
    category: envelope.category,
    receivedAt: record.receivedAt,
    line: archiveLineOf(record),
  })
}

function archiveLine(plan: FlushPlan, message: ParsedMessage, record: PendingRecord): void {
  plan.archive.push({
    id: record.id,
    deviceId: message.deviceId,
    category: message.category,
    receivedAt: record.receivedAt,
    line: archiveLineOf(record),
  })
}

const NEWLINE = 0x0a
const RETURN = 0x0d
const CLOSE = Buffer.from('}')

/**
 * `{"received_at":…,"topic":…,"message":<payload>}` — the payload's own bytes when they fit on
 * one NDJSON line (they parsed as JSON, so they are a valid value); re-serialised only when the
 * device sent line breaks or bytes that are not UTF-8; `"message_base64"` for a binary datagram.
 * Saves a JSON.stringify per message, and the payload is not copied here: the line is its parts,
 * joined once into the archive object.
 */
function archiveLineOf(record: PendingRecord): Buffer[] {
  const head = `{"received_at":"${new Date(record.receivedAt).toISOString()}","topic":${JSON.stringify(record.topic)},`
  const { payload } = record
  // A binary datagram is not JSON: its bytes, in base64 (PROTOCOL.md, "Binary telemetry").
  if (payload[0] === BINARY_TELEMETRY_MARKER) {
    return [Buffer.from(`${head}"message_base64":"${payload.toString('base64')}"}`)]
  }
  if (payload.indexOf(NEWLINE) === -1 && payload.indexOf(RETURN) === -1 && isUtf8(payload)) {
    return [Buffer.from(`${head}"message":`), payload, CLOSE]
  }
  // Parsed again: a parsed message does not keep its JSON (kept alive, it costs garbage collection).
  const body = JSON.parse(payload.toString('utf8'))
  return [Buffer.from(`${head}"message":${JSON.stringify(body)}}`)]
}

import type { FastifyBaseLogger } from 'fastify'
import { type ConfigChange, checkConfigChange, checkOtaRequest, type OtaRequest } from './command-params.ts'
import { verifyCommand } from './command-signature.ts'
import type { CommandResult } from './messages.ts'
import { SeenCommands } from './seen-commands.ts'

/** The command key of a device (64 hex), or undefined when none is provisioned. */
export type KeyProvider = (deviceId: string) => string | undefined | Promise<string | undefined>

/** What a command can make the device do. */
export interface CommandTarget {
  readonly deviceId: string
  ack(cmdId: string, result: CommandResult, detail?: string): void
  sendStatusHello(): void
  applyConfig(change: ConfigChange): void
  factoryReset(): void
  reboot(reason: string): void
  readonly otaRunning: boolean
  startOta(cmdId: string, request: OtaRequest): void
}

export const KNOWN_COMMANDS = ['update_config', 'start_ota', 'reboot', 'factory_reset', 'request_status']
const SEEN_MAX = 1000
/** Clock difference between server and device tolerated on `ts` and `exp`. */
export const CLOCK_TOLERANCE_MS = 60_000
/** A signed command valid for longer than this (exp − ts) is refused: no near-eternal commands. */
const MAX_VALIDITY_MS = 86_400_000

interface Decision {
  result: CommandResult
  detail?: string
  effect?: () => void
}

const rejected = (detail: string): Decision => ({ result: 'rejected', detail })

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Receives `iot/{id}/command`: parses, drops the copies that arrive through the other brokers
 * (same cmd_id), checks the signature when a key is provisioned (no key: the device cannot check
 * and accepts), then that the command is for this device, fresh (ts, exp) and not executed before
 * (replay protection, issue 16 row 4), acks, then acts. The ack is queued before the effect, so it
 * goes out first. A stale or future command is answered `expired`; a cmd_id executed before (also
 * before a restart: persisted) is dropped without an answer.
 */
export class CommandProcessor {
  private readonly seen = new Set<string>()

  constructor(
    private readonly target: CommandTarget,
    private readonly keyFor: KeyProvider | undefined,
    private readonly handled: (cmd: string, result: CommandResult) => void,
    private readonly log: FastifyBaseLogger,
    /** Executed cmd_ids, persisted when the meter has a state directory. */
    private readonly executed = new SeenCommands(),
    private readonly now: () => number = Date.now,
  ) {}

  async handle(payload: Buffer): Promise<void> {
    let command: unknown
    try {
      command = JSON.parse(payload.toString('utf8'))
    } catch {
      this.log.warn({ device_id: this.target.deviceId }, 'command is not JSON; ignored')
      return
    }
    if (!isObject(command) || typeof command.cmd_id !== 'string' || command.cmd_id.length === 0) {
      this.log.warn({ device_id: this.target.deviceId }, 'command without cmd_id; cannot ack, ignored')
      return
    }
    const cmdId = command.cmd_id
    // A copy through another broker, a redelivery, or a replay: executed once, acked once (the
    // first ack stands — a second one could overtake it through another broker).
    if (this.seen.has(cmdId) || this.executed.has(cmdId)) return
    this.seen.add(cmdId)
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value as string)

    const name = typeof command.cmd === 'string' ? command.cmd : ''
    const decision = await this.decide(command, name)
    this.target.ack(cmdId, decision.result, decision.detail)
    this.handled(KNOWN_COMMANDS.includes(name) ? name : 'other', decision.result)
    decision.effect?.()
  }

  /** The ack to send and, when accepted, what to do once it is queued. */
  private async decide(command: Record<string, unknown>, name: string): Promise<Decision> {
    let key: string | undefined
    try {
      key = await this.keyFor?.(this.target.deviceId)
    } catch (error) {
      this.log.error({ err: error, device_id: this.target.deviceId }, 'command key lookup failed')
      return { result: 'error', detail: 'command key unavailable' }
    }
    if (key !== undefined) {
      if (command.sig === undefined) return rejected('missing signature')
      if (!verifyCommand(command, key)) return rejected('bad signature')
    }
    if (command.v !== 2) return rejected('unsupported envelope version')
    const stale = this.freshness(command, key !== undefined)
    if (stale) return stale
    const t = this.target
    const params = command.params ?? {}
    const cmdId = command.cmd_id as string
    switch (name) {
      case 'update_config': {
        const change = checkConfigChange(params)
        if (!change.ok) return rejected(change.detail)
        return this.accept(command, () => t.applyConfig(change.value))
      }
      case 'start_ota': {
        const request = checkOtaRequest(params)
        if (!request.ok) return rejected(request.detail)
        if (t.otaRunning) return rejected('a firmware upgrade is already running')
        return this.accept(command, () => t.startOta(cmdId, request.value))
      }
      case 'request_status':
      case 'reboot':
      case 'factory_reset': {
        if (!isObject(params) || Object.keys(params).length > 0)
          return rejected(`${name} takes no parameters`)
        const effect = {
          request_status: () => t.sendStatusHello(),
          reboot: () => t.reboot('command'),
          factory_reset: () => t.factoryReset(),
        }[name]
        return this.accept(command, effect)
      }
      default:
        return { result: 'unsupported', detail: `unknown command ${JSON.stringify(name).slice(0, 80)}` }
    }
  }

  /** For this device, signed within its validity, not executed before; else the ack to give. */
  private freshness(command: Record<string, unknown>, signed: boolean): Decision | undefined {
    const { device_id: deviceId, ts, exp } = command
    if (deviceId !== undefined && deviceId !== this.target.deviceId)
      return rejected('addressed to another device')
    if (!signed) return undefined
    // Signed: these fields are covered by the signature and required.
    if (deviceId === undefined) return rejected('device_id missing')
    const tsMs = typeof ts === 'string' ? Date.parse(ts) : Number.NaN
    const expMs = typeof exp === 'string' ? Date.parse(exp) : Number.NaN
    if (!Number.isFinite(tsMs) || !Number.isFinite(expMs)) return rejected('ts and exp required')
    if (expMs - tsMs > MAX_VALIDITY_MS || expMs < tsMs) return rejected('validity out of bounds')
    const now = this.now()
    if (tsMs > now + CLOCK_TOLERANCE_MS) return { result: 'expired', detail: 'ts in the future' }
    if (now > expMs + CLOCK_TOLERANCE_MS) return { result: 'expired', detail: 'past its exp' }
    return undefined
  }

  /** Accepted: remembered as executed (on disk first) until its exp, so a replay is refused. */
  private accept(command: Record<string, unknown>, effect: () => void): Decision {
    const exp = typeof command.exp === 'string' ? Date.parse(command.exp) : Number.NaN
    const now = this.now()
    this.executed.add(command.cmd_id as string, (Number.isFinite(exp) ? exp : now) + CLOCK_TOLERANCE_MS, now)
    return { result: 'accepted', effect }
  }
}

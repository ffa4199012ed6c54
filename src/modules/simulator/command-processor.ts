import type { FastifyBaseLogger } from 'fastify'
import { type ConfigChange, checkConfigChange, checkOtaRequest, type OtaRequest } from './command-params.ts'
import { verifyCommand } from './command-signature.ts'
import type { CommandResult } from './messages.ts'

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
 * and accepts), acks, then acts. The ack is queued before the effect, so it goes out first.
 */
export class CommandProcessor {
  private readonly seen = new Set<string>()

  constructor(
    private readonly target: CommandTarget,
    private readonly keyFor: KeyProvider | undefined,
    private readonly handled: (cmd: string, result: CommandResult) => void,
    private readonly log: FastifyBaseLogger,
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
    if (this.seen.has(cmdId)) return
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
    const t = this.target
    const params = command.params ?? {}
    const cmdId = command.cmd_id as string
    switch (name) {
      case 'update_config': {
        const change = checkConfigChange(params)
        if (!change.ok) return rejected(change.detail)
        return { result: 'accepted', effect: () => t.applyConfig(change.value) }
      }
      case 'start_ota': {
        const request = checkOtaRequest(params)
        if (!request.ok) return rejected(request.detail)
        if (t.otaRunning) return rejected('a firmware upgrade is already running')
        return { result: 'accepted', effect: () => t.startOta(cmdId, request.value) }
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
        return { result: 'accepted', effect }
      }
      default:
        return { result: 'unsupported', detail: `unknown command ${JSON.stringify(name).slice(0, 80)}` }
    }
  }
}

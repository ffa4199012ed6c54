import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { MqttHub } from '../../platform/mqtt/index.ts'
import { MESSAGE_KINDS, topicOf } from '../../protocol/index.ts'
import type { CommandKeys } from './command-keys.ts'
import { buildEnvelope } from './command-signature.ts'
import * as repo from './repository.ts'

export interface OutgoingCommand {
  cmd_id: string
  device_id: string
  device_pk: number
  cmd: string
  params: Record<string, unknown>
}

export interface OutboxOptions {
  db: Kysely<Database>
  mqtt: MqttHub
  keys: CommandKeys
  log: FastifyBaseLogger
  /** How long a caller waits for a broker's acknowledgement before answering "stored, sent later". */
  publishWaitMs: number
  /** From signing to the envelope's `exp` (COMMAND_ACK_TIMEOUT_S). */
  validForMs: number
}

const BATCH = 100

/** Resolves with `fallback` when `promise` takes longer than `ms`; the promise itself goes on. */
function withDeadline<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms)
    timer.unref()
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/**
 * The command outbox: every `pending` row is a command no broker has taken yet. A command is
 * signed with the device's current key when it is published, to every connected broker at QoS 2,
 * and becomes `sent` once one broker acknowledged it. Delivery is at least once: the device
 * drops copies by cmd_id (it gets one per broker anyway).
 */
export class CommandOutbox {
  private readonly inFlight = new Map<string, Promise<boolean>>()
  private flushing: Promise<void> | null = null
  private again = false
  private closed = false

  constructor(private readonly options: OutboxOptions) {}

  /**
   * Publishes one pending command. True when a broker acknowledged it within publishWaitMs; an
   * acknowledgement that comes later still marks it sent. One attempt per command at a time.
   */
  publish(command: OutgoingCommand, recheck = false): Promise<boolean> {
    let attempt = this.inFlight.get(command.cmd_id)
    if (!attempt) {
      attempt = this.attempt(command, recheck).finally(() => this.inFlight.delete(command.cmd_id))
      this.inFlight.set(command.cmd_id, attempt)
    }
    return withDeadline(attempt, this.options.publishWaitMs, false)
  }

  private async attempt(command: OutgoingCommand, recheck: boolean): Promise<boolean> {
    const { db, mqtt, keys, log } = this.options
    try {
      if (recheck && (await repo.findCommand(db, command.cmd_id))?.status !== 'pending') return true
      const key = await keys.keyFor(command.device_pk)
      const now = Date.now()
      const envelope = buildEnvelope(
        {
          v: 2,
          device_id: command.device_id,
          cmd_id: command.cmd_id,
          ts: new Date(now).toISOString(),
          // Signed: a captured command cannot be replayed after this (nor to another device).
          exp: new Date(now + this.options.validForMs).toISOString(),
          cmd: command.cmd,
          params: command.params,
        },
        key,
      )
      const topic = topicOf(command.device_id, 'command')
      const qos = MESSAGE_KINDS.command.qos
      const { delivered, failed } = await mqtt.publish(topic, JSON.stringify(envelope), { qos })
      if (delivered.length === 0) return false
      await repo.markSent(db, command.cmd_id)
      log.info({ cmd_id: command.cmd_id, device_id: command.device_id, delivered, failed }, 'command sent')
      return true
    } catch (error) {
      log.warn({ err: error, cmd_id: command.cmd_id }, 'command not published')
      return false
    }
  }

  /** Publishes the pending commands, oldest first, while a broker is connected. Runs one at a time. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true
      return this.flushing
    }
    this.flushing = (async () => {
      do {
        this.again = false
        await this.drain()
      } while (this.again && !this.closed)
    })()
      .catch((error) => this.options.log.warn({ err: error }, 'command outbox flush failed'))
      .finally(() => {
        this.flushing = null
      })
    return this.flushing
  }

  private async drain(): Promise<void> {
    const { db, mqtt, log } = this.options
    while (!this.closed && mqtt.connectedCount() > 0) {
      const rows = await repo.listPending(db, BATCH, [...this.inFlight.keys()])
      if (rows.length === 0) return
      let sent = 0
      for (const row of rows) {
        if (this.closed) return
        if (await this.publish({ ...row, params: row.params ?? {} }, true)) sent++
      }
      log.info({ sent, pending: rows.length }, 'command outbox flushed')
      if (sent === 0) return
    }
  }

  /** Stops flushing and waits (at most publishWaitMs) for the publishes under way. */
  async close(): Promise<void> {
    this.closed = true
    const running = [...this.inFlight.values(), ...(this.flushing ? [this.flushing] : [])]
    await withDeadline(Promise.allSettled(running), this.options.publishWaitMs, [])
  }
}

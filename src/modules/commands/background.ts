import type { FastifyBaseLogger } from 'fastify'
import type { MqttHub } from '../../platform/mqtt/index.ts'
import type { CommandsService } from './service.ts'

/** How often the sweeper looks for timed-out commands: a quarter of the timeout, 250 ms to 5 s. */
export const sweepIntervalMs = (ackTimeoutS: number) =>
  Math.min(5000, Math.max(250, (ackTimeoutS * 1000) / 4))

/**
 * The module's background work. A sweeper marks commands whose ack did not come in time (from the
 * database, so it survives restarts) and retries the outbox while a broker is up; the outbox is
 * also flushed at start and every time a broker connection comes (back). Returns the stop function.
 */
export function startBackground(options: {
  commands: CommandsService
  mqtt: MqttHub
  ackTimeoutS: number
  log: FastifyBaseLogger
}): () => Promise<void> {
  const { commands, mqtt, log } = options
  let running: Promise<void> | null = null
  let stopped = false

  const flush = () => {
    if (!stopped) void commands.flushOutbox()
  }
  const tick = () => {
    if (running || stopped) return
    running = (async () => {
      try {
        await commands.sweepTimeouts()
        if (mqtt.connectedCount() > 0) await commands.flushOutbox()
      } catch (error) {
        log.warn({ err: error }, 'command sweep failed')
      }
    })().finally(() => {
      running = null
    })
  }

  for (const link of mqtt.links) link.client.on('connect', flush)
  const timer = setInterval(tick, sweepIntervalMs(options.ackTimeoutS))
  timer.unref()
  flush()

  return async () => {
    stopped = true
    clearInterval(timer)
    for (const link of mqtt.links) link.client.off('connect', flush)
    await running
  }
}

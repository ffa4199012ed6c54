import { Counter, Gauge, type Registry } from 'prom-client'

export interface SimulatorMetrics {
  sent: Counter<'type'>
  connected: Gauge
  commands: Counter<'cmd' | 'result'>
}

/**
 * The simulator's Prometheus metrics on a registry: the app's (fastify-metrics, so they appear on
 * /metrics) or a private one (CLI). An existing metric of the same name on the registry is reused.
 */
export function createSimulatorMetrics(registry: Registry): SimulatorMetrics {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined
  return {
    sent:
      existing<Counter<'type'>>('simulator_messages_sent_total') ??
      new Counter({
        name: 'simulator_messages_sent_total',
        help: 'Messages the simulated meters handed to a broker connection (one per broker), by type',
        labelNames: ['type'],
        registers: [registry],
      }),
    connected:
      existing<Gauge>('simulator_devices_connected') ??
      new Gauge({
        name: 'simulator_devices_connected',
        help: 'Simulated meters connected to at least one broker',
        registers: [registry],
      }),
    commands:
      existing<Counter<'cmd' | 'result'>>('simulator_commands_handled_total') ??
      new Counter({
        name: 'simulator_commands_handled_total',
        help: 'Commands the simulated meters acknowledged, by command and result',
        labelNames: ['cmd', 'result'],
        registers: [registry],
      }),
  }
}

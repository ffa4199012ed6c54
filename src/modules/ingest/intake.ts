import type { Writable } from 'node:stream'
import type { Aedes, AuthorizePublishHandler } from 'aedes'
import type { MqttHub } from '../../platform/mqtt/index.ts'
import { DEVICE_KINDS, everyDeviceFilter } from '../../protocol/index.ts'
import { parseTopic } from './parse-message.ts'
import type { IngestPipeline } from './pipeline.ts'

/** Device → server topics of every device; subscribed at QoS 1 whatever QoS the devices publish at. */
export const INGEST_TOPICS = DEVICE_KINDS.map(everyDeviceFilter)

/**
 * External brokers: subscribe on every broker (MQTT v5 shared subscription when a group is set)
 * and hand each message to the pipeline; its PUBACK waits until the message is journaled.
 *
 * MQTT.js hands a connection's messages over one at a time, each after the previous one's
 * callback: were the callback deferred to the journal commit, one message per event-loop turn
 * would pass. So the callback runs at once, while the connection's socket is corked: the PUBACKs
 * it writes stay in the process until the journal group is committed, then leave together
 * (and if the commit fails, the socket is destroyed with them: the broker delivers again).
 */
export function subscribeExternal(hub: MqttHub, pipeline: IngestPipeline, sharedGroup?: string): void {
  const corked = new Set<Writable>()
  const holdAcks = (stream: Writable): boolean => {
    if (typeof stream.cork !== 'function') return false
    if (corked.has(stream)) return true
    stream.cork()
    corked.add(stream)
    pipeline.afterCommit((error) => {
      corked.delete(stream)
      if (error) stream.destroy(error)
      else stream.uncork()
    })
    return true
  }
  hub.onMessage((link, packet, done) => {
    // Not copied here: the journal makes the one copy that is kept (see Journal.append).
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    pipeline.accept(packet.topic, payload, done, holdAcks(link.client.stream) ? 'now' : 'durable')
  })
  const topics = INGEST_TOPICS.map((t) => (sharedGroup ? `$share/${sharedGroup}/${t}` : t))
  for (const link of hub.links) {
    // MQTT.js queues this until connected and subscribes again after a reconnect by itself.
    link.client.subscribe(topics, { qos: 1 }, (error) => {
      if (error) link.client.emit('error', error)
    })
  }
}

/**
 * Embedded broker: the devices are its clients, so their own PUBACK/PUBREC waits until the message
 * is journaled (aedes acknowledges a publish only after authorizePublish calls back). Wills (the
 * LWT) pass through here too.
 */
export function tapEmbedded(aedes: Aedes, pipeline: IngestPipeline): void {
  const previous = aedes.authorizePublish.bind(aedes) as AuthorizePublishHandler
  const handler: AuthorizePublishHandler = (client, packet, callback) => {
    previous(client, packet, (error) => {
      if (error) return callback(error)
      if (!parseTopic(packet.topic)) return callback(null)
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
      // aedes handles the packets of a read concurrently: the acknowledgement waits for the commit.
      pipeline.accept(packet.topic, payload, (failed) => callback(failed ?? null))
    })
  }
  aedes.authorizePublish = handler
}

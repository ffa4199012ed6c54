import { DEVICE_ID_BODY } from './device-id.ts'
import { type Direction, MESSAGE_KINDS, type MessageKindName } from './message-kinds.ts'

/** Every topic is `iot/{device_id}/{suffix}`, the suffix naming the message kind. */
const names = Object.keys(MESSAGE_KINDS) as MessageKindName[]
const KIND_OF_SUFFIX = new Map<string, MessageKindName>(names.map((n) => [MESSAGE_KINDS[n].suffix, n]))
const suffixes = (keep: (name: MessageKindName) => boolean) =>
  names.filter(keep).map((n) => MESSAGE_KINDS[n].suffix)
const TOPIC = new RegExp(`^iot/(${DEVICE_ID_BODY})/(${suffixes(() => true).join('|')})$`)
/** Any one level before the suffix (not only a valid id): retained is decided by the suffix alone. */
const RETAINED = new RegExp(`^iot/[^/]+/(${suffixes((n) => MESSAGE_KINDS[n].retained).join('|')})$`)

/** The topic of a kind for one device. */
export function topicOf(deviceId: string, kind: MessageKindName): string {
  return `iot/${deviceId}/${MESSAGE_KINDS[kind].suffix}`
}

/** The filter of a kind's topic for every device: `iot/+/{suffix}`. */
export function everyDeviceFilter(kind: MessageKindName): string {
  return `iot/+/${MESSAGE_KINDS[kind].suffix}`
}

/** The device id and kind a topic names (of the direction, when given), or undefined. */
export function parseTopic(
  topic: string,
  direction?: Direction,
): { deviceId: string; kind: MessageKindName } | undefined {
  const m = TOPIC.exec(topic)
  const kind = m && KIND_OF_SUFFIX.get(m[2] as string)
  if (!kind || (direction && MESSAGE_KINDS[kind].direction !== direction)) return undefined
  return { deviceId: (m as RegExpExecArray)[1] as string, kind }
}

/** ACL: a device publishes only the kinds devices publish, on its own id's topics (its will included). */
export function deviceMayPublish(deviceId: string, topic: string): boolean {
  const route = parseTopic(topic)
  return route?.deviceId === deviceId && MESSAGE_KINDS[route.kind].publisher === 'device'
}

/** ACL: a device subscribes only to the kinds devices receive, on exactly its own id's topic (no wildcards). */
export function deviceMaySubscribe(deviceId: string, topicFilter: string): boolean {
  const route = parseTopic(topicFilter)
  return route?.deviceId === deviceId && MESSAGE_KINDS[route.kind].subscriber === 'device'
}

/** Whether the protocol publishes this topic retained (a device's status). */
export function isRetainedTopic(topic: string): boolean {
  return RETAINED.test(topic)
}

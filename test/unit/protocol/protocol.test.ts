import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  ARCHIVE_CATEGORIES,
  DEVICE_KINDS,
  deviceMayPublish,
  deviceMaySubscribe,
  everyDeviceFilter,
  isRetainedTopic,
  MESSAGE_KINDS,
  type MessageKindName,
  parseTopic,
  topicOf,
} from '../../../src/protocol/index.ts'

const kinds = Object.keys(MESSAGE_KINDS) as MessageKindName[]

describe('the protocol table (src/protocol)', () => {
  test('the kinds of PROTOCOL.md v2, each with its topic, direction and QoS', () => {
    const rows = kinds.map((k) => [k, topicOf('m-1', k), MESSAGE_KINDS[k].direction, MESSAGE_KINDS[k].qos])
    assert.deepEqual(rows, [
      ['telemetry', 'iot/m-1/telemetry', 'device→server', 2],
      ['hello', 'iot/m-1/hello', 'device→server', 2],
      ['status', 'iot/m-1/status', 'device→server', 1],
      ['command_ack', 'iot/m-1/command/ack', 'device→server', 2],
      ['ota_status', 'iot/m-1/ota/status', 'device→server', 1],
      ['command', 'iot/m-1/command', 'server→device', 2],
    ])
    assert.deepEqual(DEVICE_KINDS, ['telemetry', 'hello', 'status', 'command_ack', 'ota_status'])
    assert.deepEqual(ARCHIVE_CATEGORIES, DEVICE_KINDS)
    assert.deepEqual(DEVICE_KINDS.map(everyDeviceFilter), [
      'iot/+/telemetry',
      'iot/+/hello',
      'iot/+/status',
      'iot/+/command/ack',
      'iot/+/ota/status',
    ])
  })

  test('a direction names its publisher and subscriber', () => {
    for (const k of kinds) {
      const { direction, publisher, subscriber } = MESSAGE_KINDS[k]
      const expected = direction === 'device→server' ? ['device', 'server'] : ['server', 'device']
      assert.deepEqual([publisher, subscriber], expected, k)
    }
  })

  test('parseTopic reads every topic back, filtered by direction, and refuses what is no topic', () => {
    for (const k of kinds)
      assert.deepEqual(parseTopic(topicOf('a.b_c-1', k)), { deviceId: 'a.b_c-1', kind: k })
    assert.equal(parseTopic('iot/m-1/command', 'device→server'), undefined)
    assert.deepEqual(parseTopic('iot/m-1/command', 'server→device'), { deviceId: 'm-1', kind: 'command' })
    for (const topic of [
      'iot/+/telemetry',
      'iot/../hello',
      'iot/m-1/telemetry/x',
      'iot/m-1/ota',
      'x/m-1/hello',
      '',
    ])
      assert.equal(parseTopic(topic), undefined, topic)
  })

  test('ACL: a device publishes only the device → server kinds of its own id, subscribes only its command', () => {
    for (const suffix of ['telemetry', 'hello', 'status', 'command/ack', 'ota/status'])
      assert.equal(deviceMayPublish('m-1', `iot/m-1/${suffix}`), true, suffix)
    for (const topic of [
      'iot/m-1/command',
      'iot/m-2/telemetry',
      'iot/m-1/telemetry/x',
      'iot/m-1/other',
      'iot/m-1',
    ])
      assert.equal(deviceMayPublish('m-1', topic), false, topic)
    assert.equal(deviceMaySubscribe('m-1', 'iot/m-1/command'), true)
    for (const filter of ['iot/+/command', 'iot/m-1/#', 'iot/#', 'iot/m-2/command', 'iot/m-1/telemetry'])
      assert.equal(deviceMaySubscribe('m-1', filter), false, filter)
  })

  test('only the status topic is retained (any one level before it)', () => {
    assert.equal(isRetainedTopic('iot/m-1/status'), true)
    assert.equal(isRetainedTopic('iot/.x/status'), true)
    for (const topic of ['iot/m-1/hello', 'iot/m-1/command', 'iot/a/b/status', 'iot/m-1/status/x'])
      assert.equal(isRetainedTopic(topic), false, topic)
  })
})

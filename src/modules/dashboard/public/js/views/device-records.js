import { api, download, qs } from '../api.js'
import { empty, field, h, onSubmit, panel, select, statusLine, table } from '../dom.js'
import { bytes, dateTime } from '../format.js'

const CATEGORIES = ['telemetry', 'hello', 'status', 'command_ack', 'ota_status']

function configText(config) {
  return Object.entries(config)
    .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : value}`)
    .join(', ')
}

/** REQ-CONFIG-001 audit trail: every configuration the device ran with, newest first. */
export function configPanel({ scope, base, events }) {
  const status = statusLine({ live: false })
  const list = h('div', {})
  const onCommand = (event) => {
    if (event.detail.cmd === 'update_config' && event.detail.status === 'accepted') poll.now()
  }
  events.addEventListener('command', onCommand)
  scope.onDispose(() => events.removeEventListener('command', onCommand))
  const poll = scope.every(30_000, async () => {
    try {
      const entries = await api(`${base}/config-history`, { signal: scope.signal })
      list.replaceChildren(
        entries.length === 0
          ? empty('No configuration recorded yet.')
          : table(
              'Configuration history',
              ['Since', 'Source', 'Configuration'],
              entries.map((e) => [
                dateTime(e.created_at),
                e.cmd_id ? h('span', { title: `command ${e.cmd_id}` }, e.source) : e.source,
                h('code', {}, configText(e.config)),
              ]),
            ),
      )
      status.clear()
    } catch (error) {
      if (error.name !== 'AbortError') status.error(error.message)
      throw error
    }
  })
  return panel('config-history', 'Configuration history', status.el, list)
}

/** The raw archive: the newest objects of a category, each downloadable with the session's token. */
export function archivePanel({ scope, base, deviceId }) {
  const category = select([['', 'All categories'], ...CATEGORIES.map((c) => [c, c])], '')
  const status = statusLine()
  const list = h('div', {})
  async function save(object) {
    const name = object.filename.split('/').pop()
    const rest = object.filename.slice(deviceId.length + 1)
    try {
      const size = await download(`${base}/raw-data/${rest}`, `${deviceId}-${name}`)
      status.ok(`Downloaded ${name} (${bytes(size)}).`)
    } catch (error) {
      status.error(`Download failed: ${error.message}`)
    }
  }
  async function load() {
    try {
      const objects = await api(`${base}/raw-data${qs({ limit: 25, prefix: category.value })}`, {
        signal: scope.signal,
      })
      list.replaceChildren(
        objects.length === 0
          ? empty('Nothing archived yet for this selection.')
          : table(
              'Archived raw messages',
              ['Object', 'Size', 'Stored', ''],
              objects.map((o) => [
                h('code', {}, o.filename.slice(deviceId.length + 1)),
                bytes(o.size),
                dateTime(o.last_modified),
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'small secondary',
                    onclick: () => save(o),
                    'aria-label': `Download ${o.filename}`,
                  },
                  'Download',
                ),
              ]),
            ),
      )
    } catch (error) {
      if (error.name !== 'AbortError') status.error(error.message)
    }
  }
  category.addEventListener('change', load)
  load()
  return panel(
    'archive',
    'Raw archive',
    h(
      'form',
      { class: 'filters', onsubmit: onSubmit(load) },
      field('archive-category', 'Category', category),
      h('button', { type: 'submit', class: 'secondary' }, 'Refresh'),
    ),
    h('p', { class: 'hint' }, 'Newest 25 objects, NDJSON with one device message per line.'),
    status.el,
    list,
  )
}

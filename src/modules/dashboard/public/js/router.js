/** The hash address: `#/path?query`. */
export function parseHash(hash = location.hash) {
  const [path, query = ''] = hash.replace(/^#/, '').split('?')
  return { path: path || '/fleet', query: new URLSearchParams(query) }
}

/** Replaces the hash query without a reload or a route change (filters stay in the address). */
export function setQuery(params) {
  const { path } = parseHash()
  const search = new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== '' && v !== null && v !== undefined),
  )
  const text = search.toString()
  history.replaceState(null, '', `#${path}${text ? `?${text}` : ''}`)
}

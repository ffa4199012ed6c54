// The one LRU map is the platform's; this re-export stays only while pipeline.ts imports it from here.
export { Lru } from '../../platform/lru.ts'

/** What retention touches of replay (owned by replay; used by src/core/retention): the replay area's copies. */
export { replayArea } from './evidence';

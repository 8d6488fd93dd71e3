// The registry screen's logic that needs no DOM.

import type { ModelVersion } from "./wire";

/** Versions the table shows before "show all": the newest first. A model with 1,000 versions
 *  renders its first screen in a fraction of the time (BENCHMARKS.md, issue #14). */
export const VERSION_PAGE = 100;

/** The versions the table shows: newest first, `VERSION_PAGE` of them unless `all`. */
export function shownVersions(versions: ModelVersion[], all: boolean): ModelVersion[] {
  const newest = [...versions].reverse();
  return all ? newest : newest.slice(0, VERSION_PAGE);
}

/** Marking several rows of a list (the Data panel's selection for a preprocessing run). */

/**
 * The rows marked after a click on `key`: a plain click marks it alone, an
 * additive one (Ctrl/⌘/Shift) adds it to the marked rows or takes it out.
 */
export function toggleMarked<K>(marked: K[], key: K, additive: boolean): K[] {
  if (!additive) {
    return [key];
  }
  return marked.includes(key) ? marked.filter(k => k !== key) : [...marked, key];
}

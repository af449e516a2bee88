/**
 * Building the paths and query strings of the server extension's URLs, and
 * moving about the paths of a run's output. Pure: the JupyterLab base URL is
 * joined on in handler.ts.
 */

/**
 * `?key=value&…` of the query's set values, or '' when none is: `undefined`,
 * `null` and `''` are left out (an unset filter), everything else is sent as
 * its string.
 */
export function queryString(query?: Record<string, unknown>): string {
  if (!query) {
    return '';
  }
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') {
      params.append(key, String(value));
    }
  }
  const text = params.toString();
  return text ? '?' + text : '';
}

/** The server extension's path of a kqi API path (relative to /api/v2, a leading `/` or not). */
export function apiPath(path: string): string {
  return 'api/' + path.replace(/^\//, '');
}

/** The directory above an output path (`/a/b` → `/a`, `/a` → `/`), or null at the root. */
export function parentDir(path: string): string | null {
  return path === '/' ? null : path.replace(/\/[^/]*$/, '') || '/';
}

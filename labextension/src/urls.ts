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

/** The kinds of job runs whose logs, outputs and shells the server extension relays (`kqi/{kind}/{id}/…`). */
export type RunKind = 'training' | 'inference' | 'preprocessing';

/**
 * The API path of each kind's runs (`/api/v2/{path}/{id}/…`): inference's
 * routes are `inferences/…`; the server extension maps `kqi/{kind}/…` the same way.
 */
export const RUN_API_PATH: Record<RunKind, string> = {
  training: 'training',
  inference: 'inferences',
  preprocessing: 'preprocessing'
};

/** The API path of one run, or of one of its routes: `runPath('inference', 3, 'halt')` → `inferences/3/halt`. */
export function runPath(kind: RunKind, id: number, route?: string): string {
  return `${RUN_API_PATH[kind]}/${id}` + (route ? `/${route}` : '');
}

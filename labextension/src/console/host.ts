/**
 * The console's host of the screens: the kqi service's own API at
 * `{base}api/v2/…`, called with the browser's session (the service's OAuth
 * cookie, same origin; the service refuses cookie-authenticated writes from
 * another origin). A run's log, output files and shell are the API's own
 * routes (`…/{id}/log`, `…/{id}/output`, `…/{id}/shell`).
 */
import { IKqiHost } from '../host';
import { queryString, runPath } from '../urls';

export function consoleHost(base: string, location: { protocol: string; host: string } = window.location): IKqiHost {
  const api = (path: string, query?: Record<string, unknown>) =>
    `${base}api/v2/${path.replace(/^\//, '')}` + queryString(query);
  return {
    apiUrl: api,
    runUrl: (kind, id, route, query) => api(runPath(kind, id, route), query),
    shellUrl: (kind, id) =>
      `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${api(runPath(kind, id, 'shell'))}`,
    fetch: (url, init) => {
      const headers = new Headers(init.headers);
      if (typeof init.body === 'string' && !headers.has('Content-Type')) {
        headers.set('Content-Type', 'application/json');
      }
      return window.fetch(url, { ...init, headers, credentials: 'same-origin' });
    },
    thisServer: '',
    unreachable: 'The KQI service cannot be reached'
  };
}

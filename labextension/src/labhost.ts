/**
 * The JupyterLab host of the screens: the notebook server's extension under
 * `{baseUrl}kqi/` holds the notebook's token and relays to the kqi service
 * (`kqi/api/…`, `kqi/{kind}/{id}/log|output|shell`).
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IKqiHost } from './host';
import { apiPath, queryString } from './urls';

export function labHost(): IKqiHost {
  const settings = (): ServerConnection.ISettings => ServerConnection.makeSettings();
  const kqiUrl = (path: string, query?: Record<string, unknown>) =>
    URLExt.join(settings().baseUrl, 'kqi', path) + queryString(query);
  return {
    apiUrl: (path, query) => kqiUrl(apiPath(path), query),
    runUrl: (kind, id, route, query) => kqiUrl(`${kind}/${id}/${route}`, query),
    shellUrl: (kind, id) => {
      const s = settings();
      const url = URLExt.join(s.wsUrl, 'kqi', kind, String(id), 'shell');
      return s.token ? `${url}?token=${encodeURIComponent(s.token)}` : url;
    },
    fetch: (url, init) => ServerConnection.makeRequest(url, init, settings()),
    thisServer: PageConfig.getOption('hubServerName'),
    unreachable: 'The notebook server cannot be reached'
  };
}

/**
 * Calls to the server extension under `{baseUrl}kqi/` (the `requestAPI` pattern).
 *
 * `requestAPI` calls the kqi API through `kqi/api/…`; every failure becomes a
 * `KqiError` carrying the service's own status and message, so the panels
 * can show it to the user.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { errorOf, KqiError } from './errors';
import { apiPath, queryString } from './urls';

export { KqiError } from './errors';
export { jsonBody } from './forms';

/** A list page: the items and the total the service counted (X-Total-Count). */
export interface IPage<T> {
  items: T[];
  total: number;
}

const settings = (): ServerConnection.ISettings => ServerConnection.makeSettings();

/** The absolute URL of an endpoint of the server extension (`kqi/…`). */
export function kqiUrl(path: string, query?: Record<string, unknown>): string {
  const s = settings();
  return URLExt.join(s.baseUrl, 'kqi', path) + queryString(query);
}

/** A raw request to the server extension; rejects with KqiError on any failure. */
export async function requestRaw(url: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings());
  } catch (error) {
    throw new KqiError(0, `The notebook server cannot be reached: ${error}`);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  return response;
}

/** Calls the kqi API path (relative to /api/v2) through the server extension. */
export async function requestAPI<T>(path: string, init: RequestInit = {}, query?: Record<string, unknown>): Promise<T> {
  const response = await requestRaw(kqiUrl(apiPath(path), query), init);
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** A page of a list endpoint with the service's total count. */
export async function requestPage<T>(path: string, query: Record<string, unknown>): Promise<IPage<T>> {
  const response = await requestRaw(kqiUrl(apiPath(path), query));
  const items = (await response.json()) as T[];
  const total = Number(response.headers.get('X-Total-Count') ?? items.length);
  return { items, total };
}

/**
 * Calls to the kqi API through the screens' host (`host.ts`: JupyterLab's
 * server extension, or the console's own session) — the `requestAPI` pattern.
 *
 * Every failure becomes a `KqiError` carrying the service's own status and
 * message, so the screens can show it to the user.
 */
import { errorOf, KqiError } from './errors';
import { host, RunRoute } from './host';
import { RunKind } from './urls';

export { KqiError } from './errors';
export { jsonBody } from './forms';

/** A list page: the items and the total the service counted (X-Total-Count). */
export interface IPage<T> {
  items: T[];
  total: number;
}

/** The URL of a run's log or of a file of its output, as the host serves them. */
export function runUrl(kind: RunKind, id: number, route: RunRoute, query?: Record<string, unknown>): string {
  return host().runUrl(kind, id, route, query);
}

/** A raw request through the host; rejects with KqiError on any failure. */
export async function requestRaw(url: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await host().fetch(url, init);
  } catch (error) {
    throw new KqiError(0, `${host().unreachable}: ${error}`);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  return response;
}

/** Calls the kqi API path (relative to /api/v2) through the host. */
export async function requestAPI<T>(path: string, init: RequestInit = {}, query?: Record<string, unknown>): Promise<T> {
  const response = await requestRaw(host().apiUrl(path, query), init);
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** A page of a list endpoint with the service's total count. */
export async function requestPage<T>(path: string, query: Record<string, unknown>): Promise<IPage<T>> {
  const response = await requestRaw(host().apiUrl(path, query));
  const items = (await response.json()) as T[];
  const total = Number(response.headers.get('X-Total-Count') ?? items.length);
  return { items, total };
}

/**
 * Calls to the server extension under `{baseUrl}kqi/` (the `requestAPI` pattern).
 *
 * `requestAPI` calls the kqi API through `kqi/api/…`; every failure becomes a
 * `KqiError` carrying the service's own status and message, so the panels
 * can show it to the user.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error answered by the kqi service (or the extension), as the user should read it. */
export class KqiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'KqiError';
  }
}

/** A list page: the items and the total the service counted (X-Total-Count). */
export interface IPage<T> {
  items: T[];
  total: number;
}

const settings = (): ServerConnection.ISettings => ServerConnection.makeSettings();

/** The absolute URL of an endpoint of the server extension (`kqi/…`). */
export function kqiUrl(path: string, query?: Record<string, unknown>): string {
  const s = settings();
  let url = URLExt.join(s.baseUrl, 'kqi', path);
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        params.append(key, String(value));
      }
    }
    const text = params.toString();
    if (text) {
      url += '?' + text;
    }
  }
  return url;
}

async function errorOf(response: Response): Promise<KqiError> {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.message === 'string' && body.message) {
      message = body.message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new KqiError(response.status, message);
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
  const response = await requestRaw(kqiUrl('api/' + path.replace(/^\//, ''), query), init);
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** A page of a list endpoint with the service's total count. */
export async function requestPage<T>(path: string, query: Record<string, unknown>): Promise<IPage<T>> {
  const response = await requestRaw(kqiUrl('api/' + path.replace(/^\//, ''), query));
  const items = (await response.json()) as T[];
  const total = Number(response.headers.get('X-Total-Count') ?? items.length);
  return { items, total };
}

/** JSON request bodies. */
export function jsonBody(method: string, body?: unknown): RequestInit {
  return body === undefined ? { method } : { method, body: JSON.stringify(body) };
}

/**
 * Where the screens run: JupyterLab (the panels, through the notebook
 * server's extension under `kqi/`) or the KQI console (the kqi service's own
 * pages, calling its API with the browser's session). One set of screens, two
 * hosts: every request, log, output download and shell socket goes through
 * the host that `setHost` installed before the screens render.
 */
import { RunKind } from './urls';

/** The streamed routes of a run a screen opens by URL: its live log and a file of its output. */
export type RunRoute = 'log' | 'output';

export interface IKqiHost {
  /** The URL of a kqi API path (relative to `/api/v2`) with its query string. */
  apiUrl(path: string, query?: Record<string, unknown>): string;
  /** The URL of a run's log (`offset`, `follow`) or of one file of its output (`path`). */
  runUrl(kind: RunKind, id: number, route: RunRoute, query?: Record<string, unknown>): string;
  /** The websocket URL of a run's shell (terminado's protocol). */
  shellUrl(kind: RunKind, id: number): string;
  /** Sends a request with the host's credentials; rejects when nothing answers. */
  fetch(url: string, init: RequestInit): Promise<Response>;
  /** The hub server name of the notebook the screens are in ('' outside a notebook). */
  thisServer: string;
  /** What to say when nothing answers. */
  unreachable: string;
}

let current: IKqiHost | null = null;

/** Installs the host (once, before the first screen renders). */
export function setHost(host: IKqiHost): void {
  current = host;
}

/** The installed host. */
export function host(): IKqiHost {
  if (!current) {
    throw new Error('No KQI host: call setHost() before rendering the screens');
  }
  return current;
}

/**
 * The text the panels show for numbers, times, sizes and API models: pure
 * functions, no JupyterLab or React, so they are unit-tested on their own.
 */
import { IDataset, IGitModel, IRef, ITenant } from './types';

/** "1.5 MiB": a byte count in binary units, one decimal above bytes. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${i ? bytes.toFixed(1) : bytes} ${units[i]}`;
}

/** A progress bar's whole percent of `done` out of `total` (100 for nothing to do). */
export function percent(done: number, total: number): number {
  return total ? Math.floor((100 * done) / total) : 100;
}

/** "2h 05m 09s": seconds as the panel shows a remaining lifetime. */
export function formatSeconds(seconds: number): string {
  let left = Math.max(0, Math.floor(seconds));
  const h = Math.floor(left / 3600);
  left %= 3600;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${h}h ${pad(Math.floor(left / 60))}m ${pad(left % 60)}s`;
}

/**
 * What is left of a running notebook's lifetime: `remainingSeconds` as the
 * service said it at `receivedAt` (ms), at `now` (ms); 'unlimited' without one.
 */
export function remaining(remainingSeconds: number | null | undefined, receivedAt: number, now: number): string {
  if (remainingSeconds === null || remainingSeconds === undefined) {
    return 'unlimited';
  }
  return formatSeconds(remainingSeconds - (now - receivedAt) / 1000);
}

/** A lifetime in hours the form may send: at least 1 h, or 0 (unlimited) where the tenant allows it. */
export function lifetimeOk(hours: string, infiniteAllowed: boolean | null): boolean {
  const h = Number(hours);
  return hours.trim() !== '' && Number.isFinite(h) && (h >= 1 || (h === 0 && infiniteAllowed === true));
}

/** The lifetime field's label: "0 = unlimited" only where the tenant allows it. */
export function lifetimeLabel(infiniteAllowed: boolean | null): string {
  return infiniteAllowed ? 'Lifetime (h, 0 = unlimited)' : 'Lifetime (h, at least 1)';
}

/** The list's count line: "Loading…" until the first page, then "1 item" / "N items". */
export function itemCount(total: number | null): string {
  return total === null ? 'Loading…' : `${total} item${total === 1 ? '' : 's'}`;
}

/** A tenant as the switcher names it: its display name, else its name. */
export function tenantLabel(tenant: ITenant): string {
  return tenant.displayName || tenant.name;
}

/** "3:mnist": a referred resource as the details show it; '' for none. */
export function refLabel(ref: IRef | null | undefined): string {
  return ref ? `${ref.id}:${ref.name}` : '';
}

/** A run's resources as the details show them. */
export function resourcesLabel(run: { cpu: number; memory: number; gpu: number }): string {
  return `CPU ${run.cpu}, memory ${run.memory} GB, GPU ${run.gpu}`;
}

/** A training's model as its details show it: `owner/repository branch commit`. */
export function gitModelLabel(git: IGitModel): string {
  return `${git.owner}/${git.repository} ${git.branch ?? ''} ${git.commitId ?? ''}`;
}

/** A dataset's details rows of its entries: one per type, then `(flat)` for flat entries. */
export function entryRows(dataset: IDataset): [string, string][] {
  const groups = Object.entries(dataset.entries ?? {});
  if (dataset.flatEntries?.length) {
    groups.push(['(flat)', dataset.flatEntries]);
  }
  return groups.map(([type, items]) => [type, items.map(refLabel).join(', ')]);
}

/** Whether a dataset is locked, as its details say it. */
export function lockedLabel(isLocked: boolean | undefined): string {
  return isLocked ? 'yes (used by a run)' : 'no';
}

/** A run's status as a user reads it: the phase next to Pending, so "cloning" differs from "queued". */
export function statusLabel(status: string, phase?: string): string {
  return status === 'Pending' && (phase === 'preparing' || phase === 'starting') ? `Pending (${phase})` : status;
}

/** A shell's state once its websocket closed: a normal close is just "closed". */
export function closedState(code: number, reason: string): string {
  return code === 1000 || code === 1005 ? 'closed' : `closed (${code}${reason ? ': ' + reason : ''})`;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\r/g;

/** Terminal output as plain text: escape sequences (colours, titles, charsets) and CRs dropped. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** `text` with `more` appended, cut to its last `max` characters (a log's tail on screen). */
export function appendTail(text: string, more: string, max: number): string {
  return (text + more).slice(-max);
}

/** The definition's line about what a platform run still needs; '' when it may run. */
export function missingLabel(missing: string[] | null | undefined): string {
  return missing?.length ? `to run on the platform this still needs: ${missing.join(', ')}` : '';
}

/** A queued run's place as the lists show it ("#2 in queue"); '' when it is not queued. */
export function queueLabel(position: number | null | undefined): string {
  return position === null || position === undefined ? '' : `#${position} in queue`;
}

/** An optional resource: its value, or "(default)" when the definition leaves it blank. */
export function optionalResource(value: number | null | undefined): string {
  return value === null || value === undefined ? '(default)' : String(value);
}

/** `2026-12-08 00:31` of an API timestamp (UTC, as the service writes them); '' when absent. */
export function shortTime(timestamp: string | null | undefined): string {
  return timestamp ? timestamp.replace('T', ' ').replace(/:\d\d(\.\d+)?Z?$/, '') : '';
}

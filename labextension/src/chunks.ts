/**
 * The arithmetic of a multipart upload (see upload.ts): how a file is cut
 * into parts, which failures are retried and after how long, and how often
 * progress is shown. Pure functions, no browser or JupyterLab needed.
 */

/** Bytes per part (the last part may be shorter). */
export const PART_SIZE = 16 * 1024 * 1024;
/** Parts sent at once. */
export const PARALLEL = 8;
/** Retries of a failed part after its first attempt. */
export const RETRIES = 3;

/** How many parts a file of `size` bytes is sent in (0 for an empty file). */
export function partCount(size: number, partSize = PART_SIZE): number {
  return Math.ceil(size / partSize);
}

/** The `[start, end)` byte range of part `index` (0-based) of a file of `size` bytes. */
export function partRange(index: number, size: number, partSize = PART_SIZE): [number, number] {
  return [index * partSize, Math.min(size, (index + 1) * partSize)];
}

/** How many parts are sent at once for `parts` parts. */
export function workerCount(parts: number): number {
  return Math.min(PARALLEL, parts);
}

/** A part's entry of `partETags`: its 1-based number, `+`, the ETag its PUT answered. */
export function partETag(index: number, etag: string): string {
  return `${index + 1}+${etag}`;
}

/**
 * Whether a part that failed on attempt `attempt` (1-based) with HTTP `status`
 * (0: no answer) is tried again: up to RETRIES times, except for a 4xx other
 * than 408 (timeout) and 429 (too many requests), which another try won't fix.
 */
export function shouldRetry(status: number, attempt: number): boolean {
  return !(attempt > RETRIES || (status >= 400 && status < 500 && status !== 408 && status !== 429));
}

/** The wait (ms) before retrying after failed attempt `attempt`: 500 ms, doubling. */
export function backoffMs(attempt: number): number {
  return 500 * 2 ** (attempt - 1);
}

/** The message of a part's failed PUT: the body's `message` if it is JSON with one. */
export function partErrorMessage(status: number, responseText: string): string {
  let message = `part upload answered ${status}`;
  try {
    message = JSON.parse(responseText).message || message;
  } catch {
    // not JSON
  }
  return message;
}

/**
 * Counts bytes sent (a part that fails takes its bytes back with a negative
 * count) and reports `(done, total)` at most every 100 ms: about 10 redraws
 * a second, all a progress bar needs, and each costs the page CPU.
 */
export function progressCounter(
  total: number,
  progress: (done: number, total: number) => void,
  now: () => number = Date.now
): (bytes: number) => void {
  let done = 0;
  let shown = 0;
  return (bytes: number) => {
    done += bytes;
    const at = now();
    if (at - shown >= 100) {
      shown = at;
      progress(done, total);
    }
  };
}

/**
 * Browser uploads by the v2 multipart protocol.
 *
 * 1. `GET /upload/parameter` through the server extension (it holds the token);
 * 2. `PUT` of each part straight to its absolute, self-signed URL — no token,
 *    a few at once, a failed part retried with backoff — reading the ETag;
 * 3. `POST /upload/complete` with `partETags: ["N+etag"]`.
 *
 * Parts are slices of the `File`: the browser reads them from disk as it
 * sends them, so a large file is never held in memory.
 */
import {
  backoffMs,
  partCount as partsOf,
  partErrorMessage,
  partETag,
  partRange,
  progressCounter,
  shouldRetry,
  workerCount
} from './chunks';
import { KqiError } from './errors';
import { jsonBody, requestAPI } from './handler';
import { IUploadTicket } from './types';

/** `(bytesSent, bytesTotal)` as parts progress. */
export type Progress = (done: number, total: number) => void;

function putPart(url: string, blob: Blob, onBytes: (n: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let reported = 0;
    xhr.open('PUT', url);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = e => {
      onBytes(e.loaded - reported);
      reported = e.loaded;
    };
    xhr.onload = () => {
      const etag = xhr.getResponseHeader('ETag');
      if (xhr.status >= 200 && xhr.status < 300 && etag) {
        resolve(etag);
        return;
      }
      onBytes(-reported);
      reject(new KqiError(xhr.status, partErrorMessage(xhr.status, xhr.responseText)));
    };
    xhr.onerror = () => {
      onBytes(-reported);
      reject(new KqiError(0, 'the part upload was cut off'));
    };
    xhr.send(blob);
  });
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Uploads one file; resolves with the ticket whose `storedPath` names the stored bytes. */
export async function uploadFile(file: File, progress: Progress, resourceType = 'Data'): Promise<IUploadTicket> {
  const partCount = partsOf(file.size);
  const ticket = await requestAPI<IUploadTicket>(
    'upload/parameter',
    {},
    {
      fileName: file.name,
      partSum: partCount,
      type: resourceType
    }
  );
  const onBytes = progressCounter(file.size, progress);
  const etags: string[] = new Array(partCount);
  let next = 0;
  const worker = async () => {
    while (next < partCount) {
      const index = next++;
      const blob = file.slice(...partRange(index, file.size));
      for (let attempt = 1; ; attempt++) {
        try {
          etags[index] = partETag(index, await putPart(ticket.uris[index], blob, onBytes));
          break;
        } catch (error) {
          const status = error instanceof KqiError ? error.status : 0;
          if (!shouldRetry(status, attempt)) {
            throw new KqiError(
              status,
              `Uploading ${file.name} failed at part ${index + 1}: ${(error as Error).message}`
            );
          }
          await sleep(backoffMs(attempt));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: workerCount(partCount) }, worker));
  await requestAPI(
    'upload/complete',
    jsonBody('POST', { key: ticket.key, uploadId: ticket.uploadId, partETags: etags })
  );
  progress(file.size, file.size);
  return ticket;
}

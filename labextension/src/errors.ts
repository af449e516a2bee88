/**
 * Errors as the user reads them. No JupyterLab import here, so the panels'
 * helpers and the tests can use it without a running JupyterLab.
 */

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

/** Turns any rejection into the message the user reads. */
export function messageOf(error: unknown): string {
  if (error instanceof KqiError) {
    return error.status ? `${error.message} (${error.status})` : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The KqiError of a failed answer: the body's `message` if it is JSON with one, else the status line. */
export async function errorOf(response: Response): Promise<KqiError> {
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

/**
 * State shared by the panels: the tenant this notebook server's token is in,
 * and requests of one panel to another (show this data, open the inference
 * form for that training).
 *
 * Switching tenant rebinds the server's token in place
 * (`PUT /account/selected-tenant`), then every panel reloads.
 */
import { Signal } from '@lumino/signaling';

import { jsonBody, requestAPI } from './handler';
import { IAccount, ITenant } from './types';

/**
 * A request to a panel (by its name, e.g. `data`, `inference`): show the
 * resource `show` in its details, or open its New form prefilled with `seed`.
 */
export interface IOpenRequest {
  panel: string;
  show?: number;
  seed?: unknown;
}

export class KqiModel {
  /** The account was (re)loaded: the switcher shows it. */
  readonly changed = new Signal<KqiModel, IAccount | null>(this);
  /** The selected tenant changed: the panels reload their lists. */
  readonly tenantChanged = new Signal<KqiModel, ITenant | null>(this);
  /** A panel was asked to show something: the shell brings it forward, the panel takes the request. */
  readonly openRequested = new Signal<KqiModel, IOpenRequest>(this);
  /** A panel's selected row changed (its id, or null when none is): the console keeps it in the URL. */
  readonly selected = new Signal<KqiModel, { panel: string; id: number | null }>(this);
  account: IAccount | null = null;
  private loading: Promise<IAccount> | null = null;
  private requests = new Map<string, IOpenRequest>();

  /**
   * Asks the panel `request.panel` to show something. The request waits
   * until that panel takes it, so a panel not yet rendered gets it when it is.
   */
  open(request: IOpenRequest): void {
    this.requests.set(request.panel, request);
    this.openRequested.emit(request);
  }

  /** The request waiting for the panel `panel`, if any, now taken (a request is answered once). */
  take(panel: string): IOpenRequest | null {
    const request = this.requests.get(panel) ?? null;
    this.requests.delete(panel);
    return request;
  }

  /** Loads the account once, however many panels ask. */
  load(): Promise<IAccount> {
    if (!this.loading) {
      this.loading = requestAPI<IAccount>('account').then(
        account => this.update(account),
        error => {
          this.loading = null;
          throw error;
        }
      );
    }
    return this.loading;
  }

  async switchTenant(tenantId: number): Promise<IAccount> {
    const account = await requestAPI<IAccount>('account/selected-tenant', jsonBody('PUT', { tenantId }));
    this.loading = Promise.resolve(account);
    return this.update(account);
  }

  private update(account: IAccount): IAccount {
    const before = this.account?.selectedTenant?.id;
    this.account = account;
    this.changed.emit(account);
    if (before !== undefined && before !== account.selectedTenant?.id) {
      this.tenantChanged.emit(account.selectedTenant);
    }
    return account;
  }
}

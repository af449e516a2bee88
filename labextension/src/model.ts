/**
 * State shared by the panels: the tenant this notebook server's token is in.
 *
 * Switching tenant rebinds the server's token in place
 * (`PUT /account/selected-tenant`), then every panel reloads.
 */
import { Signal } from '@lumino/signaling';

import { jsonBody, requestAPI } from './handler';
import { IAccount, ITenant } from './types';

export class KqiModel {
  /** The account was (re)loaded: the switcher shows it. */
  readonly changed = new Signal<KqiModel, IAccount | null>(this);
  /** The selected tenant changed: the panels reload their lists. */
  readonly tenantChanged = new Signal<KqiModel, ITenant | null>(this);
  account: IAccount | null = null;
  private loading: Promise<IAccount> | null = null;

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

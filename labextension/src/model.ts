/**
 * State shared by the panels: the tenant this notebook server's token is in.
 *
 * Switching tenant rebinds the server's token in place
 * (`PUT /account/selected-tenant`), then every panel reloads.
 */
import { Signal } from '@lumino/signaling';

import { jsonBody, requestAPI } from './handler';

export interface ITenant {
  id: number;
  name: string;
  displayName?: string;
}

export interface IAccount {
  userName: string;
  selectedTenant: ITenant | null;
  tenants: ITenant[];
}

export class KqiModel {
  readonly changed = new Signal<KqiModel, IAccount | null>(this);
  account: IAccount | null = null;

  async load(): Promise<IAccount> {
    this.account = await requestAPI<IAccount>('account');
    this.changed.emit(this.account);
    return this.account;
  }

  async switchTenant(tenantId: number): Promise<IAccount> {
    this.account = await requestAPI<IAccount>(
      'account/selected-tenant',
      jsonBody('PUT', { tenantId })
    );
    this.changed.emit(this.account);
    return this.account;
  }
}

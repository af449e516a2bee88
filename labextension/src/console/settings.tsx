/**
 * Settings (the guide's ユーザ情報設定): the user's tenants and default tenant,
 * password, git tokens and registry logins per endpoint of the selected
 * tenant, and the command line that logs the `kqi` CLI in. Tokens are never
 * shown back: a row says whether one is set.
 */
import * as React from 'react';

import { ErrorBanner, SavedNote, useErrors } from '../components';
import { jsonBody, requestAPI } from '../handler';
import { KqiModel } from '../model';
import { IAccount, ITenant } from '../types';

interface IGitCredential {
  id: number;
  name: string;
  token: string | null;
}

interface IRegistryCredential {
  id: number;
  name: string;
  userName: string | null;
  password: string | null;
}

/** A small form: its fields' values, a submit that reports "saved" or the service's message. */
function useSaved(): [
  string,
  (work: () => Promise<unknown>, done: string) => Promise<void>,
  string | null,
  () => void,
  (e: unknown) => void
] {
  const [note, setNote] = React.useState('');
  const [error, setError, clearError] = useErrors();
  const save = async (work: () => Promise<unknown>, done: string) => {
    clearError();
    setNote('');
    try {
      await work();
      setNote(done);
    } catch (e) {
      setError(e);
    }
  };
  return [note, save, error, clearError, setError];
}

export function SettingsScreen(props: { model: KqiModel; base: string; hubBase: string }): JSX.Element {
  const [account, setAccount] = React.useState<IAccount | null>(props.model.account);
  const [note, save, error, clearError, setError] = useSaved();
  const [gits, setGits] = React.useState<IGitCredential[]>([]);
  const [registries, setRegistries] = React.useState<IRegistryCredential[]>([]);
  const [reload, setReload] = React.useState(0);
  React.useEffect(() => {
    const changed = (_: KqiModel, a: IAccount | null) => setAccount(a);
    props.model.changed.connect(changed);
    props.model.load().then(setAccount, () => undefined);
    return () => {
      props.model.changed.disconnect(changed);
    };
  }, [props.model]);
  React.useEffect(() => {
    requestAPI<{ gits: IGitCredential[] }>('account/gits').then(r => setGits(r.gits), setError);
    requestAPI<{ registries: IRegistryCredential[] }>('account/registries').then(
      r => setRegistries(r.registries),
      setError
    );
  }, [reload, account?.selectedTenant?.id]);
  const server = `${window.location.origin}${props.base.replace(/\/$/, '')}`;
  const login = `kqi account login -s ${server} -u ${account?.userName ?? ''}`;
  return (
    <div className="kqi-settings">
      <h2>Settings</h2>
      <ErrorBanner error={error} onClose={clearError} />
      <SavedNote text={note} />
      <section className="kqi-settings-tenants">
        <h3>Tenants</h3>
        <table className="kqi-table">
          <thead>
            <tr>
              <th>Tenant</th>
              <th>Default</th>
            </tr>
          </thead>
          <tbody>
            {(account?.tenants ?? []).map((t: ITenant) => (
              <tr key={t.id}>
                <td>{t.displayName ? `${t.displayName} (${t.name})` : t.name}</td>
                <td>
                  <input
                    type="radio"
                    name="kqi-default-tenant"
                    aria-label={`default tenant ${t.name}`}
                    checked={account?.defaultTenant?.id === t.id}
                    onChange={() =>
                      save(async () => {
                        await requestAPI('account', { method: 'PUT' }, { DefaultTenant: t.id });
                        setAccount(await requestAPI<IAccount>('account'));
                      }, `${t.name} is your default tenant`)
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <PasswordForm
        enabled={account?.passwordChangeEnabled !== false}
        onSave={(current, next) =>
          save(
            () => requestAPI('account/password', jsonBody('PUT', { currentPassword: current, newPassword: next })),
            'Password changed: your other sessions and tokens were signed out'
          )
        }
      />
      <section className="kqi-settings-gits">
        <h3>Git tokens ({account?.selectedTenant?.name ?? ''})</h3>
        {gits.map(g => (
          <SecretRow
            key={g.id}
            label={g.name}
            isSet={!!g.token}
            fields={[{ name: 'token', label: 'Token', secret: true }]}
            onSave={values =>
              save(async () => {
                await requestAPI('account/gits', jsonBody('PUT', { id: g.id, token: values.token }));
                setReload(r => r + 1);
              }, `Git token for ${g.name} saved`)
            }
          />
        ))}
      </section>
      <section className="kqi-settings-registries">
        <h3>Registry logins ({account?.selectedTenant?.name ?? ''})</h3>
        {registries.map(r => (
          <SecretRow
            key={r.id}
            label={r.name}
            isSet={!!r.password}
            detail={r.userName ?? ''}
            fields={[
              { name: 'userName', label: 'User', secret: false, initial: r.userName ?? '' },
              { name: 'password', label: 'Token', secret: true }
            ]}
            onSave={values =>
              save(async () => {
                await requestAPI(
                  'account/registries',
                  jsonBody('PUT', { id: r.id, userName: values.userName, password: values.password })
                );
                setReload(n => n + 1);
              }, `Registry login for ${r.name} saved`)
            }
          />
        ))}
      </section>
      <section className="kqi-settings-cli">
        <h3>Command line</h3>
        <p>
          Log the kqi CLI (ours, or the upstream kamonohashi-cli) in to this platform, or make a token for scripts on
          the hub&apos;s <a href={`${props.hubBase}token`}>Token page</a> (send it as{' '}
          <code>Authorization: Bearer …</code>):
        </p>
        <div className="kqi-copy-line">
          <code className="kqi-cli-login">{login}</code>
          <button className="jp-mod-styled" onClick={() => navigator.clipboard?.writeText(login)}>
            Copy
          </button>
        </div>
      </section>
    </div>
  );
}

function PasswordForm(props: { enabled: boolean; onSave: (current: string, next: string) => void }): JSX.Element {
  const [current, setCurrent] = React.useState('');
  const [next, setNext] = React.useState('');
  const [again, setAgain] = React.useState('');
  const mismatch = next !== '' && again !== '' && next !== again;
  return (
    <section className="kqi-settings-password">
      <h3>Password</h3>
      {props.enabled ? (
        <form
          onSubmit={e => {
            e.preventDefault();
            props.onSave(current, next);
            setCurrent('');
            setNext('');
            setAgain('');
          }}
        >
          <label>
            Current password{' '}
            <input
              type="password"
              className="kqi-password-current"
              autoComplete="current-password"
              value={current}
              onChange={e => setCurrent(e.target.value)}
            />
          </label>
          <label>
            New password{' '}
            <input
              type="password"
              className="kqi-password-new"
              autoComplete="new-password"
              value={next}
              onChange={e => setNext(e.target.value)}
            />
          </label>
          <label>
            Again{' '}
            <input
              type="password"
              className="kqi-password-again"
              autoComplete="new-password"
              value={again}
              onChange={e => setAgain(e.target.value)}
            />
          </label>
          {mismatch ? <span className="kqi-error-text">The new passwords differ</span> : null}
          <button className="jp-mod-styled jp-mod-accept" type="submit" disabled={!current || !next || next !== again}>
            Change password
          </button>
        </form>
      ) : (
        <p>Your password is kept by your organisation's login (LDAP, OAuth), not here.</p>
      )}
    </section>
  );
}

interface ISecretField {
  name: string;
  label: string;
  secret: boolean;
  initial?: string;
}

/** One endpoint's credentials: whether they are set, and a form that replaces them. */
function SecretRow(props: {
  label: string;
  isSet: boolean;
  detail?: string;
  fields: ISecretField[];
  onSave: (values: Record<string, string>) => void;
}): JSX.Element {
  const initial = Object.fromEntries(props.fields.map(f => [f.name, f.initial ?? '']));
  const [values, setValues] = React.useState<Record<string, string>>(initial);
  return (
    <form
      className="kqi-secret-row"
      onSubmit={e => {
        e.preventDefault();
        props.onSave(values);
        setValues(old => Object.fromEntries(props.fields.map(f => [f.name, f.secret ? '' : old[f.name]])));
      }}
    >
      <span className="kqi-secret-name">{props.label}</span>
      <span className="kqi-secret-state">{props.isSet ? 'set' : 'not set'}</span>
      {props.fields.map(f => (
        <label key={f.name}>
          {f.label}{' '}
          <input
            type={f.secret ? 'password' : 'text'}
            autoComplete="off"
            className={`kqi-secret-${f.name}`}
            value={values[f.name]}
            onChange={e => setValues(old => ({ ...old, [f.name]: e.target.value }))}
          />
        </label>
      ))}
      <button className="jp-mod-styled" type="submit">
        Save
      </button>
    </form>
  );
}

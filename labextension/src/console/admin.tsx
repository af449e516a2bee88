/**
 * The system admin's screens: one table per resource with create, edit and
 * delete where the API has them, all drawn from `adminspecs.ts`; the quotas
 * edited in place. The API refuses non-admins anyway; the console hides the
 * menu from them.
 */
import * as React from 'react';

import { ErrorBanner, SavedNote, useErrors } from '../components';
import { jsonBody, requestAPI } from '../handler';
import { ResourceScreen } from './resources';
import { ADMIN_SPECS, IAdminSpec, IField, IMembership, Values } from './adminspecs';

interface IOption {
  id: number;
  name: string;
  displayName?: string;
}

export function AdminScreen(props: { section: string }): JSX.Element {
  if (props.section === 'admin/resources') {
    return <ResourceScreen scope="admin" />;
  }
  const spec = ADMIN_SPECS.find(s => s.section === props.section);
  if (!spec) {
    return <div className="kqi-error">No such admin screen</div>;
  }
  return spec.section === 'admin/quotas' ? (
    <QuotaScreen key={spec.section} />
  ) : (
    <CrudScreen key={spec.section} spec={spec} />
  );
}

function rowsOf(spec: IAdminSpec, body: unknown): Values[] {
  const list = spec.listKey ? (body as Values)[spec.listKey] : body;
  return Array.isArray(list) ? (list as Values[]) : [];
}

function CrudScreen(props: { spec: IAdminSpec }): JSX.Element {
  const { spec } = props;
  const [rows, setRows] = React.useState<Values[] | null>(null);
  const [error, setError, clearError] = useErrors();
  const [note, setNote] = React.useState('');
  const [editing, setEditing] = React.useState<{ id: unknown; values: Values } | null>(null);
  const [reload, setReload] = React.useState(0);
  React.useEffect(() => {
    requestAPI<unknown>(spec.path).then(body => setRows(rowsOf(spec, body)), setError);
  }, [reload]);
  const key = spec.rowKey ?? 'id';
  const done = (message: string) => {
    setNote(message);
    clearError();
    setEditing(null);
    setReload(r => r + 1);
  };
  const submit = async (values: Values) => {
    const isEdit = editing !== null && editing.id !== null;
    const body = spec.toBody ? spec.toBody(values, isEdit) : values;
    try {
      if (isEdit) {
        await requestAPI(`${spec.path}/${editing!.id}`, jsonBody('PUT', body));
        done(`Saved ${String(values.name ?? values.displayName ?? editing!.id)}`);
      } else {
        const made = await requestAPI<Values>(spec.path, jsonBody('POST', body));
        done(`Created ${String(made?.name ?? made?.displayName ?? '')}`.trim());
      }
    } catch (e) {
      setError(e);
    }
  };
  const edit = async (row: Values) => {
    try {
      const item = await requestAPI<Values>(`${spec.path}/${row[key]}`);
      setEditing({ id: row[key], values: spec.fromItem ? spec.fromItem(item) : item });
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (row: Values) => {
    if (!window.confirm(`Delete ${String(row.name ?? row[key])}? This cannot be undone.`)) {
      return;
    }
    try {
      const answer = await requestAPI<Values | null>(`${spec.path}/${row[key]}`, { method: 'DELETE' });
      const warning = answer && typeof answer.containerWarnMsg === 'string' ? ` (${answer.containerWarnMsg})` : '';
      done(`Deleted ${String(row.name ?? row[key])}${warning}`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className={`kqi-admin kqi-admin-${spec.section.split('/')[1]}`}>
      <div className="kqi-toolbar">
        <h2>{spec.title}</h2>
        {spec.fields ? (
          <button className="jp-mod-styled kqi-new" onClick={() => setEditing({ id: null, values: {} })}>
            New
          </button>
        ) : null}
        <button className="jp-mod-styled" onClick={() => setReload(r => r + 1)}>
          Reload
        </button>
      </div>
      <ErrorBanner error={error} onClose={clearError} />
      <SavedNote text={note} />
      {editing && spec.fields ? (
        <EntityForm
          key={String(editing.id)}
          fields={spec.fields.filter(f => editing.id === null || !f.createOnly)}
          initial={editing.values}
          label={editing.id === null ? 'Create' : 'Save'}
          onSubmit={submit}
          onCancel={() => setEditing(null)}
          onError={setError}
        />
      ) : null}
      {rows === null ? (
        <div>Loading…</div>
      ) : (
        <table className="kqi-table kqi-admin-table">
          <thead>
            <tr>
              {spec.columns.map(c => (
                <th key={c.label}>{c.label}</th>
              ))}
              {spec.editable || spec.removable || spec.section === 'admin/users' ? <th>Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map(row => (
              <tr key={String(row[key])} className="kqi-admin-row">
                {spec.columns.map(c => (
                  <td key={c.label}>{c.value(row)}</td>
                ))}
                {spec.editable || spec.removable ? (
                  <td className="kqi-admin-actions">
                    {spec.editable ? (
                      <button className="jp-mod-styled kqi-edit" onClick={() => edit(row)}>
                        Edit
                      </button>
                    ) : null}
                    {spec.section === 'admin/users' ? (
                      <ResetPassword id={Number(row.id)} name={String(row.name)} onDone={done} onError={setError} />
                    ) : null}
                    {spec.removable ? (
                      <button className="jp-mod-styled jp-mod-warn kqi-delete" onClick={() => remove(row)}>
                        Delete
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function ResetPassword(props: {
  id: number;
  name: string;
  onDone: (m: string) => void;
  onError: (e: unknown) => void;
}) {
  return (
    <button
      className="jp-mod-styled kqi-reset-password"
      onClick={async () => {
        const password = window.prompt(`New password for ${props.name}`);
        if (!password) {
          return;
        }
        try {
          await requestAPI(`admin/users/${props.id}/password`, jsonBody('PUT', password)); // a bare JSON string
          props.onDone(`Password of ${props.name} reset; their tokens were revoked`);
        } catch (e) {
          props.onError(e);
        }
      }}
    >
      Reset password
    </button>
  );
}

/** The choices of a select/multi field: a fixed list or an API list of `{id, name}`. */
function useOptions(fields: IField[], onError: (e: unknown) => void): Record<string, IOption[]> {
  const [options, setOptions] = React.useState<Record<string, IOption[]>>({});
  React.useEffect(() => {
    for (const f of fields) {
      if (Array.isArray(f.options)) {
        setOptions(old => ({ ...old, [f.name]: f.options as IOption[] }));
      } else if (typeof f.options === 'string') {
        requestAPI<IOption[]>(f.options).then(list => setOptions(old => ({ ...old, [f.name]: list })), onError);
      }
    }
  }, []);
  return options;
}

const optionLabel = (o: IOption) => (o.displayName ? `${o.displayName} (${o.name})` : o.name);

function EntityForm(props: {
  fields: IField[];
  initial: Values;
  label: string;
  onSubmit: (values: Values) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [values, setValues] = React.useState<Values>(props.initial);
  const options = useOptions(props.fields, props.onError);
  const set = (name: string, value: unknown) => setValues(old => ({ ...old, [name]: value }));
  return (
    <form
      className="kqi-entity-form"
      onSubmit={e => {
        e.preventDefault();
        props.onSubmit(values);
      }}
    >
      {props.fields.map(f => (
        <div key={f.name} className={`kqi-field kqi-field-${f.name}`}>
          <label htmlFor={`kqi-f-${f.name}`}>
            {f.label}
            {f.required ? ' *' : ''}
          </label>
          {renderField(f, values[f.name], v => set(f.name, v), options[f.name] ?? [])}
        </div>
      ))}
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-submit" type="submit">
          {props.label}
        </button>
        <button className="jp-mod-styled" type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function renderField(f: IField, value: unknown, set: (v: unknown) => void, options: IOption[]): JSX.Element {
  const id = `kqi-f-${f.name}`;
  switch (f.type) {
    case 'checkbox':
      return <input id={id} type="checkbox" checked={!!value} onChange={e => set(e.target.checked)} />;
    case 'select':
      return (
        <select
          id={id}
          value={value === null || value === undefined ? '' : String(value)}
          onChange={e => set(e.target.value)}
        >
          <option value="">—</option>
          {options.map(o => (
            <option key={o.id} value={o.id}>
              {optionLabel(o)}
            </option>
          ))}
        </select>
      );
    case 'multi': {
      const chosen = new Set(((value as number[] | undefined) ?? []).map(Number));
      return (
        <span id={id} className="kqi-multi">
          {options.map(o => (
            <label key={o.id}>
              <input
                type="checkbox"
                value={o.id}
                checked={chosen.has(o.id)}
                onChange={e => {
                  const next = new Set(chosen);
                  if (e.target.checked) {
                    next.add(o.id);
                  } else {
                    next.delete(o.id);
                  }
                  set([...next]);
                }}
              />{' '}
              {optionLabel(o)}
            </label>
          ))}
        </span>
      );
    }
    case 'memberships':
      return <Memberships id={id} value={(value as IMembership[] | undefined) ?? []} set={set} options={options} />;
    default:
      return (
        <input
          id={id}
          type={f.type === 'password' ? 'password' : f.type === 'number' ? 'number' : 'text'}
          autoComplete={f.type === 'password' ? 'new-password' : 'off'}
          value={value === null || value === undefined ? '' : String(value)}
          onChange={e => set(e.target.value)}
        />
      );
  }
}

/** A user's tenants: member or not, the default one, and whether they manage it. */
function Memberships(props: { id: string; value: IMembership[]; set: (v: IMembership[]) => void; options: IOption[] }) {
  const byId = new Map(props.value.map(m => [m.id, m]));
  const update = (id: number, change: Partial<IMembership> | null) => {
    let next = props.value.filter(m => m.id !== id);
    if (change) {
      next.push({ id, default: false, manager: false, ...byId.get(id), ...change });
    }
    if (change?.default) {
      next = next.map(m => ({ ...m, default: m.id === id }));
    }
    if (next.length && !next.some(m => m.default)) {
      next[0] = { ...next[0], default: true };
    }
    props.set(next);
  };
  return (
    <table id={props.id} className="kqi-memberships">
      <tbody>
        {props.options.map(o => {
          const m = byId.get(o.id);
          return (
            <tr key={o.id} data-id={o.id}>
              <td>
                <label>
                  <input
                    type="checkbox"
                    className="kqi-member"
                    checked={!!m}
                    onChange={e => update(o.id, e.target.checked ? {} : null)}
                  />{' '}
                  {optionLabel(o)}
                </label>
              </td>
              <td>
                <label>
                  <input
                    type="radio"
                    disabled={!m}
                    checked={!!m?.default}
                    onChange={() => update(o.id, { default: true })}
                  />{' '}
                  default
                </label>
              </td>
              <td>
                <label>
                  <input
                    type="checkbox"
                    disabled={!m}
                    checked={!!m?.manager}
                    onChange={e => update(o.id, { manager: e.target.checked })}
                  />{' '}
                  manager
                </label>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

interface IQuota {
  tenantId: number;
  tenantName: string;
  cpu: number;
  memory: number;
  gpu: number;
}

/** Every tenant's quota, edited in place (0 is unlimited) and saved together. */
function QuotaScreen(): JSX.Element {
  const [quotas, setQuotas] = React.useState<IQuota[]>([]);
  const [error, setError, clearError] = useErrors();
  const [note, setNote] = React.useState('');
  React.useEffect(() => {
    requestAPI<IQuota[]>('admin/quotas').then(setQuotas, setError);
  }, []);
  const change = (tenantId: number, field: 'cpu' | 'memory' | 'gpu', value: string) =>
    setQuotas(old => old.map(q => (q.tenantId === tenantId ? { ...q, [field]: Number(value) } : q)));
  return (
    <div className="kqi-admin kqi-admin-quotas">
      <div className="kqi-toolbar">
        <h2>Quotas (0 is unlimited)</h2>
      </div>
      <ErrorBanner error={error} onClose={clearError} />
      <SavedNote text={note} />
      <table className="kqi-table">
        <thead>
          <tr>
            <th>Tenant</th>
            <th>CPU</th>
            <th>Memory (GiB)</th>
            <th>GPU</th>
          </tr>
        </thead>
        <tbody>
          {quotas.map(q => (
            <tr key={q.tenantId}>
              <td>{q.tenantName}</td>
              {(['cpu', 'memory', 'gpu'] as const).map(field => (
                <td key={field}>
                  <input
                    type="number"
                    min={0}
                    aria-label={`${field} of ${q.tenantName}`}
                    value={q[field]}
                    onChange={e => change(q.tenantId, field, e.target.value)}
                  />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <button
        className="jp-mod-styled jp-mod-accept"
        onClick={async () => {
          try {
            await requestAPI('admin/quotas', jsonBody('POST', quotas));
            clearError();
            setNote('Quotas saved');
          } catch (e) {
            setError(e);
          }
        }}
      >
        Save quotas
      </button>
    </div>
  );
}

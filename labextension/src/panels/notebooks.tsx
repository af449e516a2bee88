/**
 * The Notebooks panel: platform notebooks (named servers) listed with
 * filters; run a new one, open, halt, rerun, with the remaining lifetime.
 */
import * as React from 'react';

import { Details, ErrorBanner, FilterBox, TenantSwitcher, useErrors, VirtualList } from '../components';
import { jsonBody, requestAPI, requestPage } from '../handler';
import { KqiModel } from '../model';

interface INotebook {
  id: number;
  name: string;
  status: string;
  memo?: string;
  createdAt?: string;
}

interface INotebookDetails extends INotebook {
  dataSet?: { id: number; name: string } | null;
  containerImage?: { image: string; tag: string } | null;
  cpu: number;
  memory: number;
  gpu: number;
  startedAt?: string | null;
  completedAt?: string | null;
  expiresIn?: number | null;
  conditionNote?: string | null;
}

const ACTIVE = ['Pending', 'Running'];

/** "2h 05m 09s" left of a notebook started at `startedAt` with a lifetime of `expiresIn` seconds. */
export function remaining(startedAt: string | null | undefined, expiresIn: number | null | undefined, now: number): string {
  if (!startedAt || !expiresIn) {
    return expiresIn === 0 ? 'unlimited' : '';
  }
  const started = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(startedAt) ? startedAt : startedAt + 'Z');
  let left = Math.max(0, Math.floor((started + expiresIn * 1000 - now) / 1000));
  const h = Math.floor(left / 3600);
  left %= 3600;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${h}h ${pad(Math.floor(left / 60))}m ${pad(left % 60)}s`;
}

function NewNotebook(props: { onCreated: (n: INotebook) => void; onCancel: () => void; onError: (e: unknown) => void }): JSX.Element {
  const [f, setF] = React.useState({ name: '', dataSetId: '', image: '', tag: '', cpu: '1', memory: '1', gpu: '0', hours: '8', memo: '' });
  const [datasets, setDatasets] = React.useState<{ id: number; name: string }[]>([]);
  React.useEffect(() => {
    requestAPI<{ id: number; name: string }[]>('datasets', {}, { perPage: 500 }).then(setDatasets, props.onError);
  }, []);
  const input = (key: keyof typeof f, label: string, type = 'text') => (
    <label>
      {label} <input className={`kqi-nb-${key}`} type={type} value={f[key]} onChange={e => setF({ ...f, [key]: e.target.value })} />
    </label>
  );
  const run = async () => {
    const body = {
      name: f.name.trim(),
      dataSetId: f.dataSetId ? Number(f.dataSetId) : null,
      containerImage: f.image.trim() ? { image: f.image.trim(), tag: f.tag.trim() } : null,
      cpu: Number(f.cpu), memory: Number(f.memory), gpu: Number(f.gpu),
      expiresIn: Math.round(Number(f.hours) * 3600),
      memo: f.memo
    };
    try {
      props.onCreated(await requestAPI<INotebook>('notebook/run', jsonBody('POST', body)));
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <div className="kqi-form kqi-new-notebook">
      <h3>New notebook</h3>
      {input('name', 'Name')}
      <label>
        Dataset{' '}
        <select value={f.dataSetId} onChange={e => setF({ ...f, dataSetId: e.target.value })}>
          <option value="">(none)</option>
          {datasets.map(d => (
            <option key={d.id} value={d.id}>
              {d.id}:{d.name}
            </option>
          ))}
        </select>
      </label>
      {input('image', 'Image')}
      {input('tag', 'Tag')}
      {input('cpu', 'CPU', 'number')}
      {input('memory', 'Memory (GB)', 'number')}
      {input('gpu', 'GPU', 'number')}
      {input('hours', 'Lifetime (h, 0 = unlimited)', 'number')}
      {input('memo', 'Memo')}
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-nb-run" disabled={!f.name.trim()} onClick={run}>
          Run
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function NotebookDetails(props: { id: number; openUrl: (url: string) => void; onChanged: () => void; onError: (e: unknown) => void }): JSX.Element {
  const [nb, setNb] = React.useState<INotebookDetails | null>(null);
  const [now, setNow] = React.useState(Date.now());
  const load = () => requestAPI<INotebookDetails>(`notebook/${props.id}`).then(setNb, props.onError);
  React.useEffect(() => {
    setNb(null);
    load();
  }, [props.id]);
  React.useEffect(() => {
    const tick = setInterval(() => setNow(Date.now()), 1000);
    const poll = setInterval(load, 5000);
    return () => {
      clearInterval(tick);
      clearInterval(poll);
    };
  }, [props.id]);
  if (!nb) {
    return <div className="kqi-detail-pane">Loading…</div>;
  }
  const act = async (call: () => Promise<unknown>) => {
    try {
      await call();
      await load();
      props.onChanged();
    } catch (e) {
      props.onError(e);
    }
  };
  const open = () =>
    act(async () => {
      const endpoint = await requestAPI<{ url?: string | null }>(`notebook/${nb.id}/endpoint`);
      if (!endpoint?.url) {
        throw new Error(`Notebook ${nb.id} has no address yet (it is ${nb.status})`);
      }
      props.openUrl(endpoint.url);
    });
  return (
    <div className="kqi-detail-pane kqi-notebook-details">
      <Details
        rows={[
          ['ID', nb.id],
          ['Name', nb.name],
          ['Status', <span className={`kqi-status kqi-status-${nb.status}`}>{nb.status}</span>],
          ['Remaining', <span className="kqi-remaining">{nb.status === 'Running' ? remaining(nb.startedAt, nb.expiresIn, now) : ''}</span>],
          ['Note', nb.conditionNote],
          ['Dataset', nb.dataSet ? `${nb.dataSet.id}:${nb.dataSet.name}` : ''],
          ['Image', nb.containerImage ? `${nb.containerImage.image}:${nb.containerImage.tag}` : ''],
          ['Resources', `CPU ${nb.cpu}, memory ${nb.memory} GB, GPU ${nb.gpu}`],
          ['Started', nb.startedAt],
          ['Memo', nb.memo]
        ]}
      />
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-nb-open" disabled={nb.status !== 'Running'} onClick={open}>
          Open
        </button>
        <button className="jp-mod-styled jp-mod-warn kqi-nb-halt" disabled={!ACTIVE.includes(nb.status)} onClick={() => act(() => requestAPI(`notebook/${nb.id}/halt`, { method: 'POST' }))}>
          Halt
        </button>
        <button className="jp-mod-styled kqi-nb-rerun" disabled={ACTIVE.includes(nb.status)} onClick={() => act(() => requestAPI(`notebook/${nb.id}/rerun`, jsonBody('POST', {})))}>
          Rerun
        </button>
        <button className="jp-mod-styled kqi-delete" disabled={ACTIVE.includes(nb.status)} onClick={() => act(() => requestAPI(`notebook/${nb.id}`, { method: 'DELETE' }))}>
          Delete
        </button>
      </div>
    </div>
  );
}

export function NotebooksPanel(props: { model: KqiModel; openUrl: (url: string) => void }): JSX.Element {
  const [error, setError, clearError] = useErrors();
  const [name, setName] = React.useState('');
  const [status, setStatus] = React.useState('');
  const [reload, setReload] = React.useState(0);
  const [selected, setSelected] = React.useState<number | null>(null);
  const [creating, setCreating] = React.useState(false);
  React.useEffect(() => {
    const changed = () => {
      setSelected(null);
      setReload(r => r + 1);
    };
    props.model.tenantChanged.connect(changed);
    return () => {
      props.model.tenantChanged.disconnect(changed);
    };
  }, []);
  const refresh = () => setReload(r => r + 1);
  return (
    <div className="kqi-panel kqi-notebooks-panel">
      <TenantSwitcher model={props.model} onError={setError} />
      <div className="kqi-toolbar">
        <h2>Notebooks</h2>
        <button className="jp-mod-styled kqi-new" onClick={() => setCreating(true)}>
          New notebook
        </button>
        <button className="jp-mod-styled" onClick={refresh}>
          Reload
        </button>
      </div>
      <ErrorBanner error={error} onClose={clearError} />
      {creating ? (
        <NewNotebook
          onError={setError}
          onCancel={() => setCreating(false)}
          onCreated={n => {
            setCreating(false);
            clearError();
            setSelected(n.id);
            refresh();
          }}
        />
      ) : null}
      <div className="kqi-filters">
        <FilterBox placeholder="Name" onChange={setName} />
        <select value={status} onChange={e => setStatus(e.target.value)}>
          <option value="">any status</option>
          {['Pending', 'Running', 'Completed', 'Killed', 'Failed', 'Error'].map(s => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </div>
      <VirtualList<INotebook>
        version={`${name}|${status}|${reload}`}
        fetchPage={(page, perPage) => requestPage<INotebook>('notebook', { Name: name, Status: status, page, perPage })}
        rowKey={n => n.id}
        selected={selected}
        onSelect={n => setSelected(n.id)}
        onError={setError}
        renderRow={n => (
          <>
            <span className="kqi-id">{n.id}</span> <span className="kqi-name">{n.name}</span>{' '}
            <span className={`kqi-status kqi-status-${n.status}`}>{n.status}</span>
          </>
        )}
      />
      {selected !== null ? <NotebookDetails id={selected} openUrl={props.openUrl} onChanged={refresh} onError={setError} /> : null}
    </div>
  );
}

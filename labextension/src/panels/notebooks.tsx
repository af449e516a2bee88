/**
 * The Notebooks panel: platform notebooks (named servers) listed with their
 * remaining lifetime and filters; run a new one, open, halt, rerun.
 *
 * The service counts lifetimes: `remainingSeconds` (details and
 * `notebook/{id}/endpoint`) is taken as of the moment it arrives and
 * counted down here, so the browser's clock never matters. The list model
 * has no lifetime, so each running row asks its endpoint once.
 */
import { PageConfig } from '@jupyterlab/coreutils';
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
  expiresAt?: string | null;
  remainingSeconds?: number | null;
  serverName?: string | null;
  url?: string | null;
  conditionNote?: string | null;
}

interface IEndpoint {
  url?: string | null;
  status?: string;
  remainingSeconds?: number | null;
}

const ACTIVE = ['Pending', 'Running'];

/** The hub server name of the notebook this JupyterLab runs in ('' outside the hub). */
export const THIS_SERVER = PageConfig.getOption('hubServerName');

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

/** A clock ticking each second while mounted. */
function useNow(): number {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(tick);
  }, []);
  return now;
}

/** The remaining lifetime of a running row of the list (asked once from its endpoint). */
function RowRemaining(props: { id: number }): JSX.Element {
  const [left, setLeft] = React.useState<{ seconds: number | null | undefined; at: number } | null>(null);
  const now = useNow();
  React.useEffect(() => {
    requestAPI<IEndpoint>(`notebook/${props.id}/endpoint`).then(
      e => setLeft({ seconds: e?.remainingSeconds, at: Date.now() }),
      () => setLeft(null)
    );
  }, [props.id]);
  return <span className="kqi-remaining">{left ? remaining(left.seconds, left.at, now) : ''}</span>;
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

function NotebookDetails(props: {
  id: number;
  openUrl: (url: string) => void;
  onChanged: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [nb, setNb] = React.useState<{ details: INotebookDetails; at: number } | null>(null);
  const now = useNow();
  const status = React.useRef<string | null>(null);
  const load = () =>
    requestAPI<INotebookDetails>(`notebook/${props.id}`).then(details => {
      setNb({ details, at: Date.now() });
      if (status.current !== null && status.current !== details.status) {
        props.onChanged(); // the list shows the new status too
      }
      status.current = details.status;
    }, props.onError);
  React.useEffect(() => {
    setNb(null);
    status.current = null;
    load();
    const poll = setInterval(load, 3000);
    return () => clearInterval(poll);
  }, [props.id]);
  if (!nb) {
    return <div className="kqi-detail-pane">Loading…</div>;
  }
  const details = nb.details;
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
      const endpoint = await requestAPI<IEndpoint>(`notebook/${details.id}/endpoint`);
      if (!endpoint?.url || endpoint.status !== 'Running') {
        throw new Error(`Notebook ${details.id} cannot be opened: it is ${endpoint?.status ?? details.status}`);
      }
      props.openUrl(endpoint.url);
    });
  const running = details.status === 'Running';
  return (
    <div className="kqi-detail-pane kqi-notebook-details">
      <Details
        rows={[
          ['ID', details.id],
          ['Name', details.name + (details.serverName && details.serverName === THIS_SERVER ? ' (this notebook)' : '')],
          ['Status', <span className={`kqi-status kqi-status-${details.status}`}>{details.status}</span>],
          ['Remaining', <span className="kqi-remaining">{running ? remaining(details.remainingSeconds, nb.at, now) : ''}</span>],
          ['Expires', running ? details.expiresAt : ''],
          ['Note', details.conditionNote],
          ['Dataset', details.dataSet ? `${details.dataSet.id}:${details.dataSet.name}` : ''],
          ['Image', details.containerImage?.image ? `${details.containerImage.image}:${details.containerImage.tag}` : ''],
          ['Resources', `CPU ${details.cpu}, memory ${details.memory} GB, GPU ${details.gpu}`],
          ['Started', details.startedAt],
          ['URL', running && details.url ? <span className="kqi-nb-url">{details.url}</span> : ''],
          ['Memo', details.memo]
        ]}
      />
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-nb-open" disabled={!running} onClick={open}>
          Open
        </button>
        <button
          className="jp-mod-styled jp-mod-warn kqi-nb-halt"
          disabled={!ACTIVE.includes(details.status)}
          onClick={() => act(() => requestAPI(`notebook/${details.id}/halt`, { method: 'POST' }))}
        >
          Halt
        </button>
        <button
          className="jp-mod-styled kqi-nb-rerun"
          disabled={ACTIVE.includes(details.status)}
          onClick={() => act(() => requestAPI(`notebook/${details.id}/rerun`, jsonBody('POST', {})))}
        >
          Rerun
        </button>
        <button
          className="jp-mod-styled kqi-delete"
          disabled={ACTIVE.includes(details.status)}
          onClick={() => act(() => requestAPI(`notebook/${details.id}`, { method: 'DELETE' }))}
        >
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
            <span className={`kqi-status kqi-status-${n.status}`}>{n.status}</span>{' '}
            {n.status === 'Running' ? <RowRemaining id={n.id} /> : null}
            {n.name === THIS_SERVER ? <span className="kqi-nb-this"> (this notebook)</span> : null}
          </>
        )}
      />
      {selected !== null ? <NotebookDetails id={selected} openUrl={props.openUrl} onChanged={refresh} onError={setError} /> : null}
    </div>
  );
}

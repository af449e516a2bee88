/**
 * The Notebooks panel: platform notebooks (named servers) listed with their
 * remaining lifetime and filters; run a new one, open, halt, rerun.
 *
 * The service counts lifetimes: `remainingSeconds` (of the list's rows and
 * of the details) is taken as of the moment it arrives and counted down
 * here, so the browser's clock never matters.
 */
import { PageConfig } from '@jupyterlab/coreutils';
import * as React from 'react';

import { Details } from '../components';
import { jsonBody, requestAPI } from '../handler';
import { KqiModel } from '../model';
import { INewFormProps, ResourcePanel } from './common';

interface INotebook {
  id: number;
  name: string;
  status: string;
  memo?: string;
  createdAt?: string;
  expiresAt?: string | null;
  remainingSeconds?: number | null;
  /** When the row arrived (ms), to count its `remainingSeconds` down from. */
  receivedAt?: number;
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
  partition?: string | null;
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

/** The remaining lifetime of a running row of the list, from the row's own `remainingSeconds`. */
function RowRemaining(props: { row: INotebook }): JSX.Element {
  const now = useNow();
  const row = props.row;
  return (
    <span className="kqi-remaining" title={row.expiresAt ? `expires ${row.expiresAt}` : undefined}>
      {remaining(row.remainingSeconds, row.receivedAt ?? now, now)}
    </span>
  );
}

/** Whether this tenant allows notebooks without a lifetime (null while asking). */
function useInfiniteAllowed(onError: (e: unknown) => void): boolean | null {
  const [allowed, setAllowed] = React.useState<boolean | null>(null);
  React.useEffect(() => {
    requestAPI<boolean>('notebook/available-infinite-time').then(
      a => setAllowed(a === true),
      e => {
        setAllowed(false);
        onError(e);
      }
    );
  }, []);
  return allowed;
}

/** A lifetime in hours the form may send: at least 1 h, or 0 (unlimited) where the tenant allows it. */
export function lifetimeOk(hours: string, infiniteAllowed: boolean | null): boolean {
  const h = Number(hours);
  return hours.trim() !== '' && Number.isFinite(h) && (h >= 1 || (h === 0 && infiniteAllowed === true));
}

/** The lifetime field's label: "0 = unlimited" only where the tenant allows it. */
function lifetimeLabel(infiniteAllowed: boolean | null): string {
  return infiniteAllowed ? 'Lifetime (h, 0 = unlimited)' : 'Lifetime (h, at least 1)';
}

/** The tenant's datasets, for a form's dataset choice. */
function useDatasets(onError: (e: unknown) => void): { id: number; name: string }[] {
  const [datasets, setDatasets] = React.useState<{ id: number; name: string }[]>([]);
  React.useEffect(() => {
    requestAPI<{ id: number; name: string }[]>('datasets', {}, { perPage: 500 }).then(setDatasets, onError);
  }, []);
  return datasets;
}

function DatasetSelect(props: {
  value: string;
  datasets: { id: number; name: string }[];
  className: string;
  onChange: (v: string) => void;
}): JSX.Element {
  return (
    <label>
      Dataset{' '}
      <select className={props.className} value={props.value} onChange={e => props.onChange(e.target.value)}>
        <option value="">(none)</option>
        {props.datasets.map(d => (
          <option key={d.id} value={d.id}>
            {d.id}:{d.name}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * A notebook form's fields (strings, as typed), the tenant's datasets and
 * whether it allows unlimited lifetimes; `input` renders one field as an
 * input of class `${prefix}-${key}`.
 */
function useNotebookForm<F extends { dataSetId: string; hours: string }>(
  initial: F,
  prefix: string,
  onError: (e: unknown) => void
) {
  const [f, setF] = React.useState(initial);
  const datasets = useDatasets(onError);
  const infinite = useInfiniteAllowed(onError);
  const input = (key: keyof F & string, label: string, type = 'text') => (
    <label>
      {label}{' '}
      <input
        className={`${prefix}-${key}`}
        type={type}
        value={f[key] as string}
        onChange={e => setF({ ...f, [key]: e.target.value })}
      />
    </label>
  );
  const datasetSelect = (
    <DatasetSelect
      className={`${prefix}-dataset`}
      value={f.dataSetId}
      datasets={datasets}
      onChange={v => setF({ ...f, dataSetId: v })}
    />
  );
  return {
    f,
    input,
    datasetSelect,
    infinite,
    lifetime: input('hours', lifetimeLabel(infinite), 'number'),
    lifetimeOk: lifetimeOk(f.hours, infinite)
  };
}

function NewNotebook(props: INewFormProps<INotebook>): JSX.Element {
  const {
    f,
    input,
    datasetSelect,
    lifetime,
    lifetimeOk: ok
  } = useNotebookForm(
    { name: '', dataSetId: '', image: '', tag: '', cpu: '1', memory: '1', gpu: '0', hours: '8', memo: '' },
    'kqi-nb',
    props.onError
  );
  const run = async () => {
    const body = {
      name: f.name.trim(),
      dataSetId: f.dataSetId ? Number(f.dataSetId) : null,
      containerImage: f.image.trim() ? { image: f.image.trim(), tag: f.tag.trim() } : null,
      cpu: Number(f.cpu),
      memory: Number(f.memory),
      gpu: Number(f.gpu),
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
      {datasetSelect}
      {input('image', 'Image')}
      {input('tag', 'Tag')}
      {input('cpu', 'CPU', 'number')}
      {input('memory', 'Memory (GB)', 'number')}
      {input('gpu', 'GPU', 'number')}
      {lifetime}
      {input('memo', 'Memo')}
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-nb-run" disabled={!f.name.trim() || !ok} onClick={run}>
          Run
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

/** Rerun a notebook with its resources, lifetime, dataset and partition (prefilled from it) changed. */
function RerunNotebook(props: {
  notebook: INotebookDetails;
  onDone: () => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const nb = props.notebook;
  const {
    f,
    input,
    datasetSelect,
    lifetime,
    lifetimeOk: ok
  } = useNotebookForm(
    {
      cpu: String(nb.cpu),
      memory: String(nb.memory),
      gpu: String(nb.gpu),
      hours: nb.expiresIn === null || nb.expiresIn === undefined ? '8' : String(nb.expiresIn / 3600),
      dataSetId: nb.dataSet ? String(nb.dataSet.id) : '',
      partition: nb.partition ?? ''
    },
    'kqi-rr',
    props.onError
  );
  const rerun = async () => {
    const body = {
      cpu: Number(f.cpu),
      memory: Number(f.memory),
      gpu: Number(f.gpu),
      expiresIn: Math.round(Number(f.hours) * 3600),
      dataSetId: f.dataSetId ? Number(f.dataSetId) : null,
      partition: f.partition.trim() || null
    };
    try {
      await requestAPI(`notebook/${nb.id}/rerun`, jsonBody('POST', body));
      props.onDone();
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <div className="kqi-form kqi-rerun-notebook">
      <h3>Rerun {nb.name}</h3>
      {input('cpu', 'CPU', 'number')}
      {input('memory', 'Memory (GB)', 'number')}
      {input('gpu', 'GPU', 'number')}
      {lifetime}
      {datasetSelect}
      {input('partition', 'Partition')}
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-rr-run" disabled={!ok} onClick={rerun}>
          Rerun
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
  const [rerunning, setRerunning] = React.useState(false);
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
    setRerunning(false);
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
          [
            'Remaining',
            <span className="kqi-remaining">{running ? remaining(details.remainingSeconds, nb.at, now) : ''}</span>
          ],
          ['Expires', running ? details.expiresAt : ''],
          ['Note', details.conditionNote],
          ['Dataset', details.dataSet ? `${details.dataSet.id}:${details.dataSet.name}` : ''],
          [
            'Image',
            details.containerImage?.image ? `${details.containerImage.image}:${details.containerImage.tag}` : ''
          ],
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
          onClick={() => setRerunning(true)}
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
      {rerunning ? (
        <RerunNotebook
          notebook={details}
          onError={props.onError}
          onCancel={() => setRerunning(false)}
          onDone={() =>
            act(async () => {
              setRerunning(false);
            })
          }
        />
      ) : null}
    </div>
  );
}

export function NotebooksPanel(props: { model: KqiModel; openUrl: (url: string) => void }): JSX.Element {
  return (
    <ResourcePanel<INotebook>
      model={props.model}
      className="kqi-notebooks-panel"
      title="Notebooks"
      newLabel="New notebook"
      renderNew={form => <NewNotebook {...form} />}
      path="notebook"
      textFilters={[{ placeholder: 'Name', param: 'Name' }]}
      statuses={['Pending', 'Running', 'Completed', 'Killed', 'Failed', 'Error']}
      receive={n => ({ ...n, receivedAt: Date.now() })}
      renderRow={n => (
        <>
          <span className="kqi-id">{n.id}</span> <span className="kqi-name">{n.name}</span>{' '}
          <span className={`kqi-status kqi-status-${n.status}`}>{n.status}</span>{' '}
          {n.status === 'Running' ? <RowRemaining row={n} /> : null}
          {n.name === THIS_SERVER ? <span className="kqi-nb-this"> (this notebook)</span> : null}
        </>
      )}
      renderDetails={(n, c) => (
        <NotebookDetails id={n.id} openUrl={props.openUrl} onChanged={c.refresh} onError={c.onError} />
      )}
    />
  );
}

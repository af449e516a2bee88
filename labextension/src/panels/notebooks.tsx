/**
 * The Notebooks panel: platform notebooks (named servers) listed with their
 * remaining lifetime and filters; run a new one, open, halt, rerun.
 *
 * The service counts lifetimes: `remainingSeconds` (of the list's rows and
 * of the details) is taken as of the moment it arrives and counted down
 * here, so the browser's clock never matters.
 */
import * as React from 'react';

import { Details, WideColumns } from '../components';
import { lifetimeLabel, lifetimeOk, refLabel, remaining, resourcesLabel, shortTime, statusLabel } from '../format';
import { EMPTY_NOTEBOOK_FORM, notebookRerunBody, notebookRunBody, rerunFormOf } from '../forms';
import { jsonBody, requestAPI } from '../handler';
import { host } from '../host';
import { KqiModel } from '../model';
import { INotebook, INotebookDetails, INotebookEndpoint, IRef } from '../types';
import { INewFormProps, ResourcePanel, RUN_SORTS } from './common';

const ACTIVE = ['Pending', 'Running'];

/** The hub server name of the notebook this JupyterLab runs in ('' outside the hub). */
/** The hub server name of the notebook the screens run in ('' in the console). */
const thisServer = (): string => host().thisServer;

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

/** The tenant's datasets, for a form's dataset choice. */
function useDatasets(onError: (e: unknown) => void): IRef[] {
  const [datasets, setDatasets] = React.useState<IRef[]>([]);
  React.useEffect(() => {
    requestAPI<IRef[]>('datasets', {}, { perPage: 500 }).then(setDatasets, onError);
  }, []);
  return datasets;
}

function DatasetSelect(props: {
  value: string;
  datasets: IRef[];
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
  } = useNotebookForm(EMPTY_NOTEBOOK_FORM, 'kqi-nb', props.onError);
  const run = async () => {
    const body = notebookRunBody(f);
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
  } = useNotebookForm(rerunFormOf(nb), 'kqi-rr', props.onError);
  const rerun = async () => {
    const body = notebookRerunBody(f);
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
      const endpoint = await requestAPI<INotebookEndpoint>(`notebook/${details.id}/endpoint`);
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
          [
            'Name',
            details.name + (details.serverName && details.serverName === thisServer() ? ' (this notebook)' : '')
          ],
          [
            'Status',
            <span className={`kqi-status kqi-status-${details.status}`}>
              {statusLabel(details.status, details.phase)}
            </span>
          ],
          [
            'Remaining',
            <span className="kqi-remaining">{running ? remaining(details.remainingSeconds, nb.at, now) : ''}</span>
          ],
          ['Expires', running ? details.expiresAt : ''],
          ['Note', details.conditionNote],
          ['Dataset', refLabel(details.dataSet)],
          [
            'Image',
            details.containerImage?.image ? `${details.containerImage.image}:${details.containerImage.tag}` : ''
          ],
          ['Resources', resourcesLabel(details)],
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
      name="notebooks"
      className="kqi-notebooks-panel"
      title="Notebooks"
      newLabel="New notebook"
      renderNew={form => <NewNotebook {...form} />}
      path="notebook"
      textFilters={[{ placeholder: 'Name', param: 'Name' }]}
      statuses={['Pending', 'Running', 'Completed', 'Killed', 'Failed', 'Error']}
      sorts={RUN_SORTS}
      receive={n => ({ ...n, receivedAt: Date.now() })}
      renderRow={n => (
        <>
          <span className="kqi-id">{n.id}</span> <span className="kqi-name">{n.name}</span>{' '}
          <span className={`kqi-status kqi-status-${n.status}`}>{statusLabel(n.status, n.phase)}</span>{' '}
          {n.status === 'Running' ? <RowRemaining row={n} /> : null}
          <WideColumns
            cells={[
              ['memo', n.memo ?? ''],
              ['created', shortTime(n.createdAt)]
            ]}
          />
          {n.name === thisServer() ? <span className="kqi-nb-this"> (this notebook)</span> : null}
        </>
      )}
      renderDetails={(n, c) => (
        <NotebookDetails id={n.id} openUrl={props.openUrl} onChanged={c.refresh} onError={c.onError} />
      )}
    />
  );
}

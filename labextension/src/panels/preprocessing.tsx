/**
 * The Preprocessing panel: definitions (list, define/edit form, what a run
 * still needs), runs on chosen data (also from the Data panel's selection),
 * and each definition's histories with status, queue position, the data
 * they produced, live log, halt, delete and lineage.
 */
import * as React from 'react';

import { Details } from '../components';
import { missingLabel, optionalResource, queueLabel, statusLabel } from '../format';
import {
  EMPTY_PREPROCESSING_FORM,
  EMPTY_PREPROCESSING_RUN_FORM,
  IPreprocessingForm,
  IPreprocessingRunForm,
  preprocessingBodyOf,
  preprocessingFormOf,
  preprocessingPatchOf,
  preprocessingRunBody
} from '../forms';
import { jsonBody, requestAPI } from '../handler';
import { KqiModel } from '../model';
import { IData, IHistory, IPreprocessing, IPreprocessingDetails, IRef } from '../types';
import { IDetailsContext, INewFormProps, ResourcePanel } from './common';
import { LineageView } from './lineage';
import { LogView } from './runview';

/** Statuses of a history that is not over: queued, running, or opened by the external flow. */
const ACTIVE = ['Pending', 'Running', 'Opened'];
/** Statuses that change on their own: the histories list is refreshed while one has them. */
const MOVING = ['Pending', 'Running'];

/** What the Data panel's "Run preprocessing" sends to this panel's New form. */
export interface IPreprocessingSeed {
  dataIds: number[];
}

/** The define form (no `initial`) or the edit form of a definition; one with histories keeps its command, image and model. */
function DefineForm(props: {
  initial?: IPreprocessingDetails;
  onSaved: (p: IPreprocessing) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const initial = props.initial;
  const locked = !!initial?.isLocked;
  const [form, setForm] = React.useState<IPreprocessingForm>(
    initial ? preprocessingFormOf(initial) : EMPTY_PREPROCESSING_FORM
  );
  const [gits, setGits] = React.useState<IRef[]>([]);
  const [busy, setBusy] = React.useState(false);
  React.useEffect(() => {
    requestAPI<IRef[]>('tenant/git/endpoints').then(setGits, props.onError);
  }, []);
  const field = (key: keyof IPreprocessingForm, label: string, extra: Record<string, unknown> = {}) => (
    <label>
      {label}{' '}
      <input
        className={`kqi-pp-${key}`}
        value={form[key]}
        onChange={e => setForm({ ...form, [key]: e.target.value })}
        {...extra}
      />
    </label>
  );
  const fixed = { disabled: locked };
  const save = async () => {
    setBusy(true);
    try {
      const saved = !initial
        ? await requestAPI<IPreprocessing>('preprocessings', jsonBody('POST', preprocessingBodyOf(form)))
        : locked
          ? await requestAPI<IPreprocessing>(
              `preprocessings/${initial.id}`,
              jsonBody('PATCH', preprocessingPatchOf(form))
            )
          : await requestAPI<IPreprocessing>(
              `preprocessings/${initial.id}`,
              jsonBody('PUT', preprocessingBodyOf(form))
            );
      props.onSaved(saved);
    } catch (e) {
      props.onError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="kqi-form kqi-define-preprocessing">
      <h3>{initial ? `Edit preprocessing ${initial.id}` : 'New preprocessing'}</h3>
      {locked ? <div className="kqi-dim">It has histories: only its name, memo and resources may change.</div> : null}
      {field('name', 'Name (required)')}
      {field('memo', 'Memo')}
      <fieldset>
        <legend>Command, image and model (optional)</legend>
        <label>
          Command{' '}
          <textarea
            className="kqi-pp-entryPoint"
            value={form.entryPoint}
            disabled={locked}
            onChange={e => setForm({ ...form, entryPoint: e.target.value })}
          />
        </label>
        {field('registryId', 'Registry ID', fixed)}
        {field('image', 'Image', { placeholder: 'python', ...fixed })}
        {field('tag', 'Tag', { placeholder: '3.11', ...fixed })}
        <label>
          Git{' '}
          <select
            className="kqi-pp-gitId"
            value={form.gitId}
            disabled={locked}
            onChange={e => setForm({ ...form, gitId: e.target.value })}
          >
            <option value="">(none)</option>
            {gits.map(g => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        {field('owner', 'Owner', fixed)}
        {field('repository', 'Repository', fixed)}
        {field('branch', 'Branch', fixed)}
        {field('commitId', 'Commit', fixed)}
      </fieldset>
      <fieldset>
        <legend>Resources (optional)</legend>
        {field('cpu', 'CPU', { type: 'number', min: 1 })}
        {field('memory', 'Memory (GB)', { type: 'number', min: 1 })}
        {field('gpu', 'GPU', { type: 'number', min: 0 })}
      </fieldset>
      <div className="kqi-buttons">
        <button
          className="jp-mod-styled jp-mod-accept kqi-save-preprocessing"
          disabled={busy || !form.name.trim()}
          onClick={save}
        >
          {initial ? 'Save' : 'Create'}
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

/** A checklist of the tenant's data (filtered by name); `value` is the checked IDs. */
function DataChooser(props: { value: number[]; onChange: (ids: number[]) => void; onError: (e: unknown) => void }) {
  const [data, setData] = React.useState<IData[]>([]);
  const [name, setName] = React.useState('');
  React.useEffect(() => {
    const timer = setTimeout(
      () => requestAPI<IData[]>('data', {}, { Name: name.trim(), perPage: 500 }).then(setData, props.onError),
      name ? 300 : 0
    );
    return () => clearTimeout(timer);
  }, [name]);
  const toggle = (id: number, on: boolean) =>
    props.onChange(on ? [...props.value.filter(v => v !== id), id] : props.value.filter(v => v !== id));
  const listed = new Set(data.map(d => d.id));
  const unlisted = props.value.filter(id => !listed.has(id));
  return (
    <div className="kqi-data-chooser">
      <div>
        Data ({props.value.length} chosen){' '}
        <input className="kqi-filter" placeholder="Name" value={name} onChange={e => setName(e.target.value)} />
      </div>
      <ul className="kqi-checklist">
        {unlisted.map(id => (
          <li key={`chosen-${id}`}>
            <label>
              <input type="checkbox" checked onChange={() => toggle(id, false)} /> data {id}
            </label>
          </li>
        ))}
        {data.map(d => (
          <li key={d.id}>
            <label>
              <input
                type="checkbox"
                className="kqi-choose-data"
                value={d.id}
                checked={props.value.includes(d.id)}
                onChange={e => toggle(d.id, e.target.checked)}
              />{' '}
              {d.id}:{d.name}
            </label>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Runs a preprocessing (`definition`, else chosen here) on chosen data: one history per data. */
function RunForm(props: {
  definition?: IPreprocessing;
  dataIds?: number[];
  onRan: (definition: IPreprocessing, histories: IHistory[]) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [definitions, setDefinitions] = React.useState<IPreprocessing[]>([]);
  const [chosen, setChosen] = React.useState(props.definition ? String(props.definition.id) : '');
  const [dataIds, setDataIds] = React.useState<number[]>(props.dataIds ?? []);
  const [form, setForm] = React.useState<IPreprocessingRunForm>(EMPTY_PREPROCESSING_RUN_FORM);
  const [busy, setBusy] = React.useState(false);
  React.useEffect(() => {
    if (!props.definition) {
      requestAPI<IPreprocessing[]>('preprocessings', {}, { perPage: 500 }).then(setDefinitions, props.onError);
    }
  }, []);
  const definition = props.definition ?? definitions.find(d => String(d.id) === chosen);
  const field = (key: keyof IPreprocessingRunForm, label: string, extra: Record<string, unknown> = {}) => (
    <label>
      {label}{' '}
      <input
        className={`kqi-pp-run-${key}`}
        value={form[key]}
        onChange={e => setForm({ ...form, [key]: e.target.value })}
        {...extra}
      />
    </label>
  );
  const run = async () => {
    if (!definition) {
      return;
    }
    setBusy(true);
    try {
      const histories = await requestAPI<IHistory[]>(
        `preprocessings/${definition.id}/run`,
        jsonBody('POST', preprocessingRunBody(dataIds, form))
      );
      props.onRan(definition, histories);
    } catch (e) {
      props.onError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="kqi-form kqi-run-preprocessing">
      <h3>Run preprocessing{props.definition ? ` ${props.definition.id}:${props.definition.name}` : ''}</h3>
      {props.definition ? null : (
        <label>
          Preprocessing{' '}
          <select className="kqi-pp-definition" value={chosen} onChange={e => setChosen(e.target.value)}>
            <option value="">(choose)</option>
            {definitions.map(d => (
              <option key={d.id} value={d.id}>
                {d.id}:{d.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <DataChooser value={dataIds} onChange={setDataIds} onError={props.onError} />
      <fieldset>
        <legend>Resources (blank: the definition&apos;s) and options</legend>
        {field('cpu', 'CPU', { type: 'number', min: 1 })}
        {field('memory', 'Memory (GB)', { type: 'number', min: 1 })}
        {field('gpu', 'GPU', { type: 'number', min: 0 })}
        <label>
          Environment{' '}
          <textarea
            className="kqi-pp-run-options"
            placeholder="KEY=value per line"
            value={form.options}
            onChange={e => setForm({ ...form, options: e.target.value })}
          />
        </label>
        {field('partition', 'Partition')}
      </fieldset>
      <div className="kqi-buttons">
        <button
          className="jp-mod-styled jp-mod-accept kqi-pp-run"
          disabled={busy || !definition || !dataIds.length}
          onClick={run}
        >
          Run on {dataIds.length} data
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

/** Links that show data in the Data panel. */
function DataLinks(props: { ids: number[]; model: KqiModel }): JSX.Element {
  return (
    <>
      {props.ids.map(id => (
        <button
          key={id}
          className="kqi-link kqi-output-data"
          onClick={() => props.model.open({ panel: 'data', show: id })}
        >
          data {id}
        </button>
      ))}
    </>
  );
}

function HistoryDetails(props: {
  history: IHistory;
  model: KqiModel;
  onChanged: () => void;
  onDeleted: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const h = props.history;
  const base = `preprocessings/${h.preprocessId}/histories/${h.dataId}`;
  const outputs = h.outputDataIds ?? [];
  const halt = async () => {
    try {
      await requestAPI(`${base}/halt`, { method: 'POST' });
      props.onChanged();
    } catch (e) {
      props.onError(e);
    }
  };
  const remove = async () => {
    const produced = outputs.length
      ? ` It also deletes the data it produced: ${outputs.map(id => `data ${id}`).join(', ')}.`
      : ' It also deletes any data it produced.';
    if (
      !window.confirm(`Delete the history of ${h.preprocessName ?? h.preprocessId} on data ${h.dataId}?${produced}`)
    ) {
      return;
    }
    try {
      await requestAPI(base, { method: 'DELETE' });
      props.onDeleted();
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <div className="kqi-history-details">
      <Details
        rows={[
          ['Data', `${h.dataId}:${h.dataName ?? ''}`],
          ['Run', h.runId ?? '(external)'],
          ['Status', <span className={`kqi-status kqi-status-${h.status}`}>{statusLabel(h.status, h.phase)}</span>],
          ['Queue position', h.queuePosition ?? ''],
          ['Note', h.conditionNote],
          ['Output data', <DataLinks ids={outputs} model={props.model} />],
          [
            'Resources',
            `CPU ${optionalResource(h.cpu)}, memory ${optionalResource(h.memory)} GB, GPU ${optionalResource(h.gpu)}`
          ],
          ['Started', h.startedAt],
          ['Completed', h.completedAt]
        ]}
      />
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-warn kqi-halt" disabled={!ACTIVE.includes(h.status)} onClick={halt}>
          Halt
        </button>
        <button
          className="jp-mod-styled kqi-delete-history"
          disabled={ACTIVE.includes(h.status)}
          title="Deletes the history and the data it produced"
          onClick={remove}
        >
          Delete history
        </button>
      </div>
      {h.runId && h.status !== 'Opened' ? <LogView kind="preprocessing" id={h.runId} onEnd={props.onChanged} /> : null}
      {h.runId ? <LineageView type="preprocessing" id={h.runId} model={props.model} version={outputs.length} /> : null}
    </div>
  );
}

/** A definition's histories, refreshed while one is queued or running; a click shows one. */
function Histories(props: { id: number; version: number; model: KqiModel; onError: (e: unknown) => void }) {
  const [histories, setHistories] = React.useState<IHistory[] | null>(null);
  const [selected, setSelected] = React.useState<number | null>(null);
  const [reload, setReload] = React.useState(0);
  const load = () =>
    requestAPI<IHistory[]>(`preprocessings/${props.id}/histories`).then(setHistories, e => {
      setHistories([]);
      props.onError(e);
    });
  React.useEffect(() => {
    load();
  }, [props.id, props.version, reload]);
  const active = (histories ?? []).some(h => MOVING.includes(h.status));
  React.useEffect(() => {
    if (!active) {
      return;
    }
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }, [active, props.id]);
  const shown = (histories ?? []).find(h => h.dataId === selected);
  return (
    <div className="kqi-histories">
      <h4>Histories</h4>
      {histories === null ? 'Loading…' : null}
      {histories && !histories.length ? <span className="kqi-dim">(none yet)</span> : null}
      <ul className="kqi-history-list">
        {(histories ?? []).map(h => (
          <li
            key={h.dataId}
            className={'kqi-history' + (h.dataId === selected ? ' kqi-selected' : '')}
            onClick={() => setSelected(h.dataId)}
          >
            <span className="kqi-name">
              {h.dataId}:{h.dataName ?? ''}
            </span>{' '}
            <span className={`kqi-status kqi-status-${h.status}`}>{statusLabel(h.status, h.phase)}</span>{' '}
            <span className="kqi-dim">{queueLabel(h.queuePosition)}</span>{' '}
            {h.outputDataIds?.length ? (
              <span className="kqi-dim">
                → <DataLinks ids={h.outputDataIds} model={props.model} />
              </span>
            ) : null}
          </li>
        ))}
      </ul>
      {shown ? (
        <HistoryDetails
          key={shown.dataId}
          history={shown}
          model={props.model}
          onChanged={() => setReload(r => r + 1)}
          onDeleted={() => {
            setSelected(null);
            setReload(r => r + 1);
          }}
          onError={props.onError}
        />
      ) : null}
    </div>
  );
}

function PreprocessingDetails(props: { id: number; model: KqiModel; context: IDetailsContext }): JSX.Element {
  const [p, setP] = React.useState<IPreprocessingDetails | null>(null);
  const [mode, setMode] = React.useState<'view' | 'edit' | 'run'>('view');
  const [version, setVersion] = React.useState(0);
  const { onError, refresh, close } = props.context;
  const load = () => requestAPI<IPreprocessingDetails>(`preprocessings/${props.id}`).then(setP, onError);
  React.useEffect(() => {
    setP(null);
    setMode('view');
    load();
  }, [props.id]);
  if (!p) {
    return <div className="kqi-detail-pane">Loading…</div>;
  }
  const remove = async () => {
    if (!window.confirm(`Delete preprocessing ${p.id}:${p.name}?`)) {
      return;
    }
    try {
      await requestAPI(`preprocessings/${p.id}`, { method: 'DELETE' });
      close();
    } catch (e) {
      onError(e);
    }
  };
  const missing = missingLabel(p.missingForRun);
  return (
    <div className="kqi-detail-pane kqi-preprocessing-details">
      <Details
        rows={[
          ['ID', p.id],
          ['Name', p.name],
          ['Memo', p.memo],
          ['Command', <code>{p.entryPoint ?? ''}</code>],
          ['Image', p.containerImage ? `${p.containerImage.image}:${p.containerImage.tag}` : ''],
          ['Model', p.gitModel ? `${p.gitModel.owner}/${p.gitModel.repository} ${p.gitModel.branch ?? ''}` : ''],
          [
            'Resources',
            `CPU ${optionalResource(p.cpu)}, memory ${optionalResource(p.memory)} GB, GPU ${optionalResource(p.gpu)}`
          ],
          ['Created', `${p.createdAt ?? ''} ${p.createdBy ?? ''}`]
        ]}
      />
      {missing ? <div className="kqi-warn kqi-missing">{missing}</div> : null}
      <div className="kqi-buttons">
        <button className="jp-mod-styled kqi-edit-preprocessing" onClick={() => setMode('edit')}>
          Edit
        </button>
        <button className="jp-mod-styled kqi-run-on-data" onClick={() => setMode('run')}>
          Run on data
        </button>
        <button className="jp-mod-styled jp-mod-warn kqi-delete" onClick={remove}>
          Delete
        </button>
      </div>
      {mode === 'edit' ? (
        <DefineForm
          initial={p}
          onError={onError}
          onCancel={() => setMode('view')}
          onSaved={() => {
            setMode('view');
            load();
            refresh();
          }}
        />
      ) : null}
      {mode === 'run' ? (
        <RunForm
          definition={p}
          onError={onError}
          onCancel={() => setMode('view')}
          onRan={() => {
            setMode('view');
            setVersion(v => v + 1);
          }}
        />
      ) : null}
      <Histories id={p.id} version={version} model={props.model} onError={onError} />
    </div>
  );
}

/** The New form: define a preprocessing, or (asked by the Data panel) run one on the chosen data. */
function NewPreprocessing(props: INewFormProps<IPreprocessing>): JSX.Element {
  const seed = props.seed as IPreprocessingSeed | undefined;
  if (seed) {
    return <RunForm dataIds={seed.dataIds} onRan={props.onCreated} onCancel={props.onCancel} onError={props.onError} />;
  }
  return <DefineForm onSaved={props.onCreated} onCancel={props.onCancel} onError={props.onError} />;
}

export function PreprocessingPanel(props: { model: KqiModel }): JSX.Element {
  return (
    <ResourcePanel<IPreprocessing>
      model={props.model}
      name="preprocessing"
      className="kqi-preprocessing-panel"
      title="Preprocessing"
      newLabel="New preprocessing"
      renderNew={form => <NewPreprocessing {...form} />}
      path="preprocessings"
      textFilters={[
        { placeholder: 'Name', param: 'Name' },
        { placeholder: 'Memo', param: 'Memo' }
      ]}
      renderRow={p => (
        <>
          <span className="kqi-id">{p.id}</span> <span className="kqi-name">{p.name}</span>{' '}
          <span className="kqi-dim">{p.memo ?? ''}</span>
        </>
      )}
      renderDetails={(p, c) => <PreprocessingDetails id={p.id} model={props.model} context={c} />}
    />
  );
}

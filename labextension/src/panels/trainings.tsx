/**
 * The Trainings panel: list with filters, the guide's four-step submit form in
 * one (with "copy from an existing training"), details with the live log,
 * output files, TensorBoard, shell and halt.
 */
import * as React from 'react';

import { Details } from '../components';
import { gitModelLabel, refLabel, resourcesLabel, statusLabel } from '../format';
import { EMPTY_TRAINING_FORM, ITrainingForm, trainingBodyOf, trainingFormOf } from '../forms';
import { jsonBody, requestAPI } from '../handler';
import { KqiModel } from '../model';
import { IRef, ITensorBoard, ITraining, ITrainingDetails } from '../types';
import { INewFormProps, ResourcePanel } from './common';
import { LogView, OutputFiles } from './runview';

const ACTIVE = ['Pending', 'Running'];

export interface IRunActions {
  openShell: (kind: string, id: number) => void;
  openUrl: (url: string) => void;
}

function NewTraining(props: INewFormProps<ITraining>): JSX.Element {
  const [form, setForm] = React.useState<ITrainingForm>(EMPTY_TRAINING_FORM);
  const [copyFrom, setCopyFrom] = React.useState('');
  const [datasets, setDatasets] = React.useState<IRef[]>([]);
  const [gits, setGits] = React.useState<IRef[]>([]);
  const [busy, setBusy] = React.useState(false);
  React.useEffect(() => {
    requestAPI<IRef[]>('datasets', {}, { perPage: 500 }).then(setDatasets, props.onError);
    requestAPI<IRef[]>('tenant/git/endpoints').then(g => {
      setGits(g);
      setForm(f => (f.gitId || !g.length ? f : { ...f, gitId: String(g[0].id) }));
    }, props.onError);
  }, []);
  const field = (key: keyof ITrainingForm, label: string, extra: Record<string, unknown> = {}) => (
    <label>
      {label}{' '}
      <input
        className={`kqi-field-${key}`}
        value={form[key] as string}
        onChange={e => setForm({ ...form, [key]: e.target.value })}
        {...extra}
      />
    </label>
  );
  const copy = async () => {
    try {
      setForm(trainingFormOf(await requestAPI<ITrainingDetails>(`training/${Number(copyFrom)}`)));
    } catch (e) {
      props.onError(e);
    }
  };
  const submit = async () => {
    setBusy(true);
    try {
      props.onCreated(await requestAPI<ITraining>('training/run', jsonBody('POST', trainingBodyOf(form))));
    } catch (e) {
      props.onError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="kqi-form kqi-new-training">
      <h3>New training</h3>
      <div className="kqi-copy-from">
        <label>
          Copy from training ID{' '}
          <input className="kqi-copy-id" value={copyFrom} onChange={e => setCopyFrom(e.target.value)} />
        </label>
        <button className="jp-mod-styled kqi-copy" disabled={!copyFrom.trim()} onClick={copy}>
          Copy
        </button>
      </div>
      <fieldset>
        <legend>1. Training</legend>
        {field('name', 'Name', { placeholder: 'lowercase, digits, -' })}
        {field('parentIds', 'Parent IDs', { placeholder: '1,2' })}
        <label>
          Dataset{' '}
          <select
            className="kqi-field-dataSetId"
            value={form.dataSetId}
            onChange={e => setForm({ ...form, dataSetId: e.target.value })}
          >
            <option value="">(none)</option>
            {datasets.map(d => (
              <option key={d.id} value={d.id}>
                {d.id}:{d.name}
              </option>
            ))}
          </select>
        </label>
      </fieldset>
      <fieldset>
        <legend>2. Image, model and command</legend>
        {field('registryId', 'Registry ID')}
        {field('image', 'Image', { placeholder: 'python' })}
        {field('tag', 'Tag', { placeholder: '3.11' })}
        <label>
          Git{' '}
          <select
            className="kqi-field-gitId"
            value={form.gitId}
            onChange={e => setForm({ ...form, gitId: e.target.value })}
          >
            {gits.map(g => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        {field('owner', 'Owner')}
        {field('repository', 'Repository')}
        {field('branch', 'Branch')}
        {field('commitId', 'Commit')}
        <label>
          Command{' '}
          <textarea
            className="kqi-field-entryPoint"
            value={form.entryPoint}
            onChange={e => setForm({ ...form, entryPoint: e.target.value })}
          />
        </label>
      </fieldset>
      <fieldset>
        <legend>3. Resources</legend>
        {field('cpu', 'CPU', { type: 'number', min: 1 })}
        {field('memory', 'Memory (GB)', { type: 'number', min: 1 })}
        {field('gpu', 'GPU', { type: 'number', min: 0 })}
      </fieldset>
      <fieldset>
        <legend>4. Options</legend>
        <label>
          Environment{' '}
          <textarea
            className="kqi-field-options"
            placeholder="KEY=value per line"
            value={form.options}
            onChange={e => setForm({ ...form, options: e.target.value })}
          />
        </label>
        <label>
          <input type="checkbox" checked={form.zip} onChange={e => setForm({ ...form, zip: e.target.checked })} /> Zip
          the results
        </label>
        {field('partition', 'Partition')}
        {field('memo', 'Memo')}
      </fieldset>
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-submit" disabled={busy} onClick={submit}>
          Run
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function TrainingDetails(props: {
  id: number;
  actions: IRunActions;
  onChanged: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [run, setRun] = React.useState<ITrainingDetails | null>(null);
  const [version, setVersion] = React.useState(0);
  const [board, setBoard] = React.useState<string | null>(null);
  const load = () => requestAPI<ITrainingDetails>(`training/${props.id}`).then(setRun, props.onError);
  React.useEffect(() => {
    setRun(null);
    setBoard(null);
    load();
  }, [props.id]);
  React.useEffect(() => {
    if (!run || !ACTIVE.includes(run.status)) {
      return;
    }
    const timer = setInterval(() => {
      load();
      setVersion(v => v + 1);
    }, 3000);
    return () => clearInterval(timer);
  }, [run?.status]);
  if (!run) {
    return <div className="kqi-detail-pane">Loading…</div>;
  }
  const act = async (what: string, call: () => Promise<unknown>) => {
    try {
      await call();
      await load();
      setVersion(v => v + 1);
      props.onChanged();
    } catch (e) {
      props.onError(e);
    }
  };
  const tensorboard = () =>
    act('tensorboard', async () => {
      const model = await requestAPI<ITensorBoard>(`training/${run.id}/tensorboard`, jsonBody('PUT', {}));
      if (model.url) {
        setBoard(model.url);
        props.actions.openUrl(model.url);
      }
    });
  return (
    <div className="kqi-detail-pane kqi-training-details">
      <Details
        rows={[
          ['ID', run.id],
          ['Name', run.name],
          [
            'Status',
            <span className={`kqi-status kqi-status-${run.status}`}>{statusLabel(run.status, run.phase)}</span>
          ],
          ['Queue position', run.queuePosition ?? ''],
          ['Note', run.conditionNote],
          ['Dataset', refLabel(run.dataSet)],
          ['Image', run.containerImage ? `${run.containerImage.image}:${run.containerImage.tag}` : ''],
          ['Model', gitModelLabel(run.gitModel)],
          ['Command', <code>{run.entryPoint}</code>],
          ['Resources', resourcesLabel(run)],
          ['Started', run.startedAt],
          ['Completed', run.completedAt],
          ['Memo', run.memo]
        ]}
      />
      <div className="kqi-buttons">
        <button
          className="jp-mod-styled jp-mod-warn kqi-halt"
          disabled={!ACTIVE.includes(run.status)}
          onClick={() => act('halt', () => requestAPI(`training/${run.id}/halt`, { method: 'POST' }))}
        >
          Halt
        </button>
        <button className="jp-mod-styled kqi-tensorboard" onClick={tensorboard}>
          TensorBoard
        </button>
        <button
          className="jp-mod-styled kqi-shell-open"
          disabled={run.status !== 'Running'}
          onClick={() => props.actions.openShell('training', run.id)}
        >
          Shell
        </button>
        <button
          className="jp-mod-styled kqi-delete"
          disabled={ACTIVE.includes(run.status)}
          onClick={() => act('delete', () => requestAPI(`training/${run.id}`, { method: 'DELETE' }))}
        >
          Delete
        </button>
      </div>
      {board ? (
        <div className="kqi-tensorboard-link">
          TensorBoard:{' '}
          <a href={board} target="_blank" rel="noreferrer">
            {board}
          </a>
        </div>
      ) : null}
      <LogView kind="training" id={run.id} onEnd={() => act('refresh', async () => undefined)} />
      <OutputFiles kind="training" id={run.id} version={version} onError={props.onError} />
    </div>
  );
}

export function TrainingsPanel(props: { model: KqiModel; actions: IRunActions }): JSX.Element {
  return (
    <ResourcePanel<ITraining>
      model={props.model}
      className="kqi-trainings-panel"
      title="Trainings"
      newLabel="New training"
      renderNew={form => <NewTraining {...form} />}
      path="training"
      textFilters={[{ placeholder: 'Name', param: 'Name' }]}
      statuses={['Pending', 'Running', 'Completed', 'UserCanceled', 'Failed', 'Killed', 'OOMKilled', 'Error']}
      renderRow={t => (
        <>
          <span className="kqi-id">{t.id}</span> <span className="kqi-name">{t.name}</span>{' '}
          <span className={`kqi-status kqi-status-${t.status}`}>{statusLabel(t.status, t.phase)}</span>
        </>
      )}
      renderDetails={(t, c) => (
        <TrainingDetails id={t.id} actions={props.actions} onChanged={c.refresh} onError={c.onError} />
      )}
    />
  );
}

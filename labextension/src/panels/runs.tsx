/**
 * The panels of job runs with a model, a dataset and parents: Trainings and
 * Inference. One list, run form (the guide's four steps in one, with "copy
 * from" and parents chosen by name) and details (live log, output files,
 * halt, shell, lineage), told apart by an `IRunKindSpec`.
 */
import * as React from 'react';

import { Details, WideColumns } from '../components';
import { formatSize, gitModelLabel, refLabel, resourcesLabel, shortTime, statusLabel } from '../format';
import { EMPTY_RUN_FORM, inferenceFormOf, IRunForm, runBodyOf, runFormOf } from '../forms';
import { jsonBody, requestAPI } from '../handler';
import { KqiModel } from '../model';
import { IInference, IInferenceDetails, IRef, IRun, ITensorBoard } from '../types';
import { RUN_API_PATH, RunKind, runPath } from '../urls';
import { INewFormProps, ResourcePanel, RUN_SORTS } from './common';
import { ImagePicker, ModelPicker, PartitionSelect, QuotaNote } from '../pickers';
import { LineageView } from './lineage';
import { LogView, OutputFiles } from './runview';

const ACTIVE = ['Pending', 'Running'];
const STATUSES = ['Pending', 'Running', 'Completed', 'UserCanceled', 'Failed', 'Killed', 'OOMKilled', 'Error'];

export interface IRunActions {
  openShell: (kind: RunKind, id: number) => void;
  openUrl: (url: string) => void;
}

/** What tells the Trainings and Inference panels apart. */
export interface IRunKindSpec {
  kind: 'training' | 'inference';
  /** The panel's name in open requests and its element id (`kqi-{panel}`). */
  panel: string;
  title: string;
  /** "training", "inference": in labels and class names. */
  noun: string;
  /** Runs of this kind have a TensorBoard. */
  tensorboard: boolean;
  /** Runs of this kind write an output value (`outputValue`), shown in the list and details. */
  outputValue: boolean;
  /** Runs of this kind mount parent inferences besides parent trainings. */
  parentInferences: boolean;
  /** A completed run offers "Run inference" (with it as parent). */
  runInference: boolean;
}

export const TRAINING_SPEC: IRunKindSpec = {
  kind: 'training',
  panel: 'trainings',
  title: 'Trainings',
  noun: 'training',
  tensorboard: true,
  outputValue: false,
  parentInferences: false,
  runInference: true
};

export const INFERENCE_SPEC: IRunKindSpec = {
  kind: 'inference',
  panel: 'inference',
  title: 'Inference',
  noun: 'inference',
  tensorboard: false,
  outputValue: true,
  parentInferences: true,
  runInference: false
};

/**
 * A multiple choice of completed runs of `kind` (`{kind}/mount?Status=Completed`)
 * by name; `value` is their IDs, comma separated. A chosen ID the list lacks stays offered.
 */
function ParentSelect(props: {
  kind: 'training' | 'inference';
  label: string;
  className: string;
  value: string;
  onChange: (value: string) => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [runs, setRuns] = React.useState<IRef[]>([]);
  React.useEffect(() => {
    requestAPI<IRef[]>(`${RUN_API_PATH[props.kind]}/mount`, {}, { Status: 'Completed' }).then(setRuns, props.onError);
  }, [props.kind]);
  const chosen = props.value ? props.value.split(',') : [];
  const missing = chosen.filter(id => !runs.some(r => String(r.id) === id));
  return (
    <label>
      {props.label}{' '}
      <select
        multiple
        className={props.className}
        value={chosen}
        onChange={e =>
          props.onChange(
            Array.from(e.target.selectedOptions)
              .map(o => o.value)
              .join(',')
          )
        }
      >
        {missing.map(id => (
          <option key={id} value={id}>
            {id}
          </option>
        ))}
        {runs.map(r => (
          <option key={r.id} value={r.id}>
            {r.id}:{r.name}
          </option>
        ))}
      </select>
    </label>
  );
}

function RunForm(props: INewFormProps<IRun> & { spec: IRunKindSpec }): JSX.Element {
  const spec = props.spec;
  const [form, setForm] = React.useState<IRunForm>((props.seed as IRunForm | undefined) ?? EMPTY_RUN_FORM);
  const [copyFrom, setCopyFrom] = React.useState('');
  const [datasets, setDatasets] = React.useState<IRef[]>([]);
  const [gits, setGits] = React.useState<IRef[]>([]);
  const [busy, setBusy] = React.useState(false);
  React.useEffect(() => {
    requestAPI<IRef[]>('datasets', {}, { perPage: 500 }).then(setDatasets, props.onError);
    Promise.all([
      requestAPI<IRef[]>('tenant/git/endpoints'),
      requestAPI<{ defaultGitId: number | null }>('account/gits')
    ]).then(([g, account]) => {
      setGits(g);
      // the tenant's default endpoint preselected (else its first)
      const preferred = g.find(e => e.id === account.defaultGitId) ?? g[0];
      setForm(f => (f.gitId || !preferred ? f : { ...f, gitId: String(preferred.id) }));
    }, props.onError);
  }, []);
  const field = (key: keyof IRunForm, label: string, extra: Record<string, unknown> = {}) => (
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
      setForm(runFormOf(await requestAPI<IInferenceDetails>(runPath(spec.kind, Number(copyFrom)))));
    } catch (e) {
      props.onError(e);
    }
  };
  const submit = async () => {
    setBusy(true);
    try {
      const path = `${RUN_API_PATH[spec.kind]}/run`;
      props.onCreated(await requestAPI<IRun>(path, jsonBody('POST', runBodyOf(spec.kind, form))));
    } catch (e) {
      props.onError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className={`kqi-form kqi-new-${spec.noun}`}>
      <h3>New {spec.noun}</h3>
      <div className="kqi-copy-from">
        <label>
          Copy from {spec.noun} ID{' '}
          <input className="kqi-copy-id" value={copyFrom} onChange={e => setCopyFrom(e.target.value)} />
        </label>
        <button className="jp-mod-styled kqi-copy" disabled={!copyFrom.trim()} onClick={copy}>
          Copy
        </button>
      </div>
      <fieldset>
        <legend>1. {spec.noun[0].toUpperCase() + spec.noun.slice(1)}</legend>
        {field('name', 'Name', { placeholder: 'lowercase, digits, -' })}
        <ParentSelect
          kind="training"
          label="Parent trainings"
          className="kqi-field-parentIds"
          value={form.parentIds}
          onChange={parentIds => setForm(f => ({ ...f, parentIds }))}
          onError={props.onError}
        />
        {spec.parentInferences ? (
          <ParentSelect
            kind="inference"
            label="Parent inferences"
            className="kqi-field-inferenceIds"
            value={form.inferenceIds}
            onChange={inferenceIds => setForm(f => ({ ...f, inferenceIds }))}
            onError={props.onError}
          />
        ) : null}
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
        <ImagePicker
          value={{ registryId: form.registryId, image: form.image, tag: form.tag }}
          onChange={v => setForm(f => ({ ...f, ...v }))}
        />
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
        <ModelPicker
          value={{
            gitId: form.gitId,
            owner: form.owner,
            repository: form.repository,
            branch: form.branch,
            commitId: form.commitId
          }}
          onChange={v => setForm(f => ({ ...f, ...v }))}
        />
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
        <QuotaNote />
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
        <PartitionSelect value={form.partition} onChange={partition => setForm(f => ({ ...f, partition }))} />
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

function RunDetails(props: {
  spec: IRunKindSpec;
  id: number;
  model: KqiModel;
  actions: IRunActions;
  onChanged: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const spec = props.spec;
  const [run, setRun] = React.useState<IInferenceDetails | null>(null);
  const [version, setVersion] = React.useState(0);
  const [board, setBoard] = React.useState<string | null>(null);
  const load = () => requestAPI<IInferenceDetails>(runPath(spec.kind, props.id)).then(setRun, props.onError);
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
  const act = async (call: () => Promise<unknown>) => {
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
    act(async () => {
      const model = await requestAPI<ITensorBoard>(runPath(spec.kind, run.id, 'tensorboard'), jsonBody('PUT', {}));
      if (model.url) {
        setBoard(model.url);
        props.actions.openUrl(model.url);
      }
    });
  const rows: [string, React.ReactNode][] = [
    ['ID', run.id],
    ['Name', run.name],
    ['Status', <span className={`kqi-status kqi-status-${run.status}`}>{statusLabel(run.status, run.phase)}</span>],
    ['Queue position', run.queuePosition ?? ''],
    ['Note', run.conditionNote]
  ];
  if (run.imageNote) {
    rows.push(['Image', <span className="kqi-image-note">{run.imageNote}</span>]);
  }
  if (run.imagePull) {
    const pull = run.imagePull;
    rows.push([
      'Image pull',
      <span className="kqi-image-pull">
        {!pull.done && !pull.error && pull.layerCount > 0 && <progress value={pull.layersDone} max={pull.layerCount} />}{' '}
        {pull.message}
      </span>
    ]);
  }
  if (spec.outputValue) {
    rows.push(['Output value', <span className="kqi-output-value">{run.outputValue ?? ''}</span>]);
  }
  rows.push(
    ['Parent trainings', (run.parents ?? []).map(refLabel).join(', ')],
    ...(spec.parentInferences
      ? ([['Parent inferences', (run.parentInferences ?? []).map(refLabel).join(', ')]] as [string, string][])
      : []),
    ['Dataset', refLabel(run.dataSet)],
    ['Image', run.containerImage ? `${run.containerImage.image}:${run.containerImage.tag}` : ''],
    ['Model', gitModelLabel(run.gitModel)],
    ['Command', <code>{run.entryPoint}</code>],
    ['Resources', resourcesLabel(run)],
    ['Started', run.startedAt],
    ['Completed', run.completedAt],
    ['Memo', run.memo]
  );
  return (
    <div className={`kqi-detail-pane kqi-${spec.noun}-details`}>
      <Details rows={rows} />
      <div className="kqi-buttons">
        <button
          className="jp-mod-styled jp-mod-warn kqi-halt"
          disabled={!ACTIVE.includes(run.status)}
          onClick={() => {
            if (window.confirm(`Halt ${spec.kind} ${run.id} (${run.name})? Its command is stopped.`)) {
              act(() => requestAPI(runPath(spec.kind, run.id, 'halt'), { method: 'POST' }));
            }
          }}
        >
          Halt
        </button>
        {spec.tensorboard ? (
          <button className="jp-mod-styled kqi-tensorboard" onClick={tensorboard}>
            TensorBoard
          </button>
        ) : null}
        {spec.runInference ? (
          <button
            className="jp-mod-styled kqi-run-inference"
            disabled={run.status !== 'Completed'}
            title="A new inference with this training as its parent and its settings"
            onClick={() => props.model.open({ panel: INFERENCE_SPEC.panel, seed: inferenceFormOf(run) })}
          >
            Run inference
          </button>
        ) : null}
        <button
          className="jp-mod-styled kqi-copy-run"
          title="A new run with this one's settings, in the New form"
          onClick={() => props.model.open({ panel: spec.panel, seed: { ...runFormOf(run), name: '' } })}
        >
          Copy run
        </button>
        <button
          className="jp-mod-styled kqi-shell-open"
          disabled={run.status !== 'Running'}
          onClick={() => props.actions.openShell(spec.kind, run.id)}
        >
          Shell
        </button>
        <button
          className="jp-mod-styled kqi-delete"
          disabled={ACTIVE.includes(run.status)}
          onClick={() => act(() => requestAPI(runPath(spec.kind, run.id), { method: 'DELETE' }))}
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
      <LogView kind={spec.kind} id={run.id} onEnd={() => act(async () => undefined)} />
      <OutputFiles kind={spec.kind} id={run.id} version={version} onError={props.onError} />
      <AttachedFiles kind={spec.kind} id={run.id} version={version} onError={props.onError} />
      {/* asked again once the run ends, not at every poll */}
      <LineageView type={spec.kind} id={run.id} model={props.model} version={ACTIVE.includes(run.status) ? 0 : 1} />
    </div>
  );
}

interface IAttachedFile {
  fileId: number;
  fileName: string;
  size?: number;
  url: string | null;
}

/** The files attached to a run: the user's, and the log and output.zip the platform keeps when it ends. */
function AttachedFiles(props: { kind: RunKind; id: number; version: number; onError: (e: unknown) => void }) {
  const [files, setFiles] = React.useState<IAttachedFile[]>([]);
  React.useEffect(() => {
    requestAPI<IAttachedFile[]>(runPath(props.kind, props.id, 'files'), {}, { withUrl: true }).then(
      setFiles,
      props.onError
    );
  }, [props.kind, props.id, props.version]);
  if (!files.length) {
    return null;
  }
  return (
    <div className="kqi-attached">
      <h4>Attached files</h4>
      <ul className="kqi-files">
        {files.map(f => (
          <li key={f.fileId}>
            <a href={f.url ?? undefined} download={f.fileName}>
              {f.fileName}
            </a>{' '}
            <span className="kqi-dim">{f.size !== undefined ? formatSize(f.size) : ''}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The list, run form and details of one kind of run. */
export function RunsPanel(props: { spec: IRunKindSpec; model: KqiModel; actions: IRunActions }): JSX.Element {
  const spec = props.spec;
  return (
    <ResourcePanel<IInference>
      model={props.model}
      name={spec.panel}
      className={`kqi-${spec.panel}-panel`}
      title={spec.title}
      newLabel={`New ${spec.noun}`}
      renderNew={form => <RunForm {...form} spec={spec} />}
      path={RUN_API_PATH[spec.kind]}
      textFilters={[{ placeholder: 'Name', param: 'Name' }]}
      statuses={STATUSES}
      sorts={RUN_SORTS}
      renderRow={t => (
        <>
          <span className="kqi-id">{t.id}</span> <span className="kqi-name">{t.name}</span>{' '}
          <span className={`kqi-status kqi-status-${t.status}`}>{statusLabel(t.status, t.phase)}</span>
          <WideColumns
            cells={[
              ['memo', t.memo ?? ''],
              ['created', shortTime(t.createdAt)],
              ['by', t.createdBy ?? '']
            ]}
          />
          {spec.outputValue && t.outputValue ? (
            <>
              {' '}
              <span className="kqi-output-value" title="Output value">
                {t.outputValue}
              </span>
            </>
          ) : null}
        </>
      )}
      renderDetails={(t, c) => (
        <RunDetails
          spec={spec}
          id={t.id}
          model={props.model}
          actions={props.actions}
          onChanged={c.refresh}
          onError={c.onError}
        />
      )}
    />
  );
}

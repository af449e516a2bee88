/**
 * The Data panel: list with filters, details with file downloads, what made
 * the data and its lineage, upload with progress into new data, delete, and
 * "Run preprocessing" on the selected data (Ctrl/⌘-click marks several).
 */
import * as React from 'react';

import { Details, WideColumns } from '../components';
import { formatSize, percent, shortTime } from '../format';
import { splitList } from '../forms';
import { jsonBody, requestAPI } from '../handler';
import { KqiModel } from '../model';
import { IData, IDataFile } from '../types';
import { uploadFile } from '../upload';
import { INewFormProps, NAME_SORTS, ResourcePanel } from './common';
import { LineageView } from './lineage';
import { IPreprocessingSeed } from './preprocessing';

/** Opens the Preprocessing panel's run form with these data chosen. */
function runPreprocessing(model: KqiModel, dataIds: number[]): void {
  const seed: IPreprocessingSeed = { dataIds };
  model.open({ panel: 'preprocessing', seed });
}

interface IPendingFile {
  file: File;
  done: number;
  storedPath?: string;
  error?: string;
}

/** A progress bar with its percentage, as an accessible progressbar. */
export function ProgressBar(props: { done: number; total: number; label: string }): JSX.Element {
  const pct = percent(props.done, props.total);
  return (
    <div
      className="kqi-progress"
      role="progressbar"
      aria-valuenow={pct}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-label={props.label}
    >
      <div className="kqi-progress-bar" style={{ width: `${pct}%` }} />
      <span className="kqi-progress-text">
        {props.label} {pct}%
      </span>
    </div>
  );
}

function NewData(props: INewFormProps<IData>): JSX.Element {
  const [name, setName] = React.useState('');
  const [memo, setMemo] = React.useState('');
  const [tags, setTags] = React.useState('');
  const [files, setFiles] = React.useState<IPendingFile[]>([]);
  const [busy, setBusy] = React.useState(false);

  const update = (file: File, change: Partial<IPendingFile>) =>
    setFiles(old => old.map(f => (f.file === file ? { ...f, ...change } : f)));

  const pick = (list: FileList | null) => {
    const picked = Array.from(list ?? []);
    setFiles(old => [...old, ...picked.map(file => ({ file, done: 0 }))]);
    for (const file of picked) {
      uploadFile(file, done => update(file, { done }))
        .then(ticket => update(file, { storedPath: ticket.storedPath, done: file.size }))
        .catch(e => {
          update(file, { error: String((e as Error).message) });
          props.onError(e);
        });
    }
  };

  const ready = name.trim() && files.length > 0 && files.every(f => f.storedPath);
  const create = async () => {
    setBusy(true);
    try {
      const data = await requestAPI<IData>(
        'data',
        jsonBody('POST', {
          name: name.trim(),
          memo,
          tags: splitList(tags)
        })
      );
      await requestAPI(
        `data/${data.id}/files`,
        jsonBody('POST', { files: files.map(f => ({ fileName: f.file.name, storedPath: f.storedPath })) })
      );
      props.onCreated(data);
    } catch (e) {
      props.onError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="kqi-form kqi-new-data">
      <h3>New data</h3>
      <label>
        Name <input className="kqi-data-name" value={name} onChange={e => setName(e.target.value)} />
      </label>
      <label>
        Memo <input value={memo} onChange={e => setMemo(e.target.value)} />
      </label>
      <label>
        Tags <input placeholder="a, b" value={tags} onChange={e => setTags(e.target.value)} />
      </label>
      <label>
        Files <input className="kqi-file-input" type="file" multiple onChange={e => pick(e.target.files)} />
      </label>
      {files.map(f => (
        <div key={f.file.name + f.file.size + f.file.lastModified} className="kqi-upload">
          <ProgressBar done={f.done} total={f.file.size} label={f.file.name} />
          {f.error ? (
            <span className="kqi-upload-error">{f.error}</span>
          ) : f.storedPath ? (
            <span className="kqi-upload-done">uploaded</span>
          ) : null}
        </div>
      ))}
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-create-data" disabled={!ready || busy} onClick={create}>
          Create data
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

/** Name, memo and tags of a data, edited in place (`PUT /data/{id}`). */
function EditData(props: {
  data: IData;
  onSaved: (d: IData) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}) {
  const [name, setName] = React.useState(props.data.name);
  const [memo, setMemo] = React.useState(props.data.memo ?? '');
  const [tags, setTags] = React.useState(props.data.tags.join(', '));
  const save = async () => {
    try {
      props.onSaved(
        await requestAPI<IData>(
          `data/${props.data.id}`,
          jsonBody('PUT', { name: name.trim(), memo, tags: splitList(tags) })
        )
      );
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <div className="kqi-form kqi-edit-data">
      <label>
        Name <input className="kqi-edit-name" value={name} onChange={e => setName(e.target.value)} />
      </label>
      <label>
        Memo <input className="kqi-edit-memo" value={memo} onChange={e => setMemo(e.target.value)} />
      </label>
      <label>
        Tags <input className="kqi-edit-tags" value={tags} onChange={e => setTags(e.target.value)} />
      </label>
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-save-data" disabled={!name.trim()} onClick={save}>
          Save
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function DataDetails(props: {
  data: IData;
  model: KqiModel;
  onDeleted: () => void;
  onChanged: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [d, setData] = React.useState<IData>(props.data);
  const [files, setFiles] = React.useState<IDataFile[] | null>(null);
  const [editing, setEditing] = React.useState(false);
  const [adding, setAdding] = React.useState<IPendingFile[]>([]);
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => setData(props.data), [props.data]);
  React.useEffect(() => {
    setFiles(null);
    requestAPI<IDataFile[]>(`data/${d.id}/files`, {}, { withUrl: true }).then(setFiles, props.onError);
  }, [d.id, version]);
  const remove = async () => {
    if (!window.confirm(`Delete data ${d.id}:${d.name}?`)) {
      return;
    }
    try {
      await requestAPI(`data/${d.id}`, { method: 'DELETE' });
      props.onDeleted();
    } catch (e) {
      props.onError(e);
    }
  };
  const removeFile = async (f: IDataFile) => {
    if (!window.confirm(`Remove ${f.fileName} from data ${d.id}:${d.name}?`)) {
      return;
    }
    try {
      await requestAPI(`data/${d.id}/files/${f.fileId}`, { method: 'DELETE' });
      setVersion(v => v + 1);
    } catch (e) {
      props.onError(e);
    }
  };
  const addFiles = (list: FileList | null) => {
    const picked = Array.from(list ?? []);
    setAdding(old => [...old, ...picked.map(file => ({ file, done: 0 }))]);
    for (const file of picked) {
      const update = (change: Partial<IPendingFile>) =>
        setAdding(old => old.map(f => (f.file === file ? { ...f, ...change } : f)));
      uploadFile(file, done => update({ done }))
        .then(ticket =>
          requestAPI(
            `data/${d.id}/files`,
            jsonBody('POST', { files: [{ fileName: file.name, storedPath: ticket.storedPath }] })
          ).then(() => {
            update({ storedPath: ticket.storedPath, done: file.size });
            setVersion(v => v + 1);
          })
        )
        .catch(e => {
          update({ error: String((e as Error).message) });
          props.onError(e);
        });
    }
  };
  return (
    <div className="kqi-detail-pane">
      <Details
        rows={[
          ['ID', d.id],
          ['Name', d.name],
          ['Memo', d.memo],
          ['Tags', d.tags.join(', ')],
          ['Created', `${d.createdAt ?? ''} ${d.createdBy ?? ''}`],
          ['Made by', d.producedByRunId ? `preprocessing run ${d.producedByRunId} (see its lineage)` : '']
        ]}
      />
      {editing ? (
        <EditData
          data={d}
          onSaved={saved => {
            setData({ ...d, ...saved });
            setEditing(false);
            props.onChanged();
          }}
          onCancel={() => setEditing(false)}
          onError={props.onError}
        />
      ) : null}
      <h4>Files</h4>
      <ul className="kqi-files">
        {files === null ? <li>Loading…</li> : null}
        {(files ?? []).map(f => (
          <li key={f.fileId}>
            <a href={f.url ?? undefined} download={f.fileName}>
              {f.fileName}
            </a>{' '}
            <span className="kqi-dim">{formatSize(f.fileSize)}</span>{' '}
            <button
              className="jp-mod-styled kqi-remove-file"
              title={`Remove ${f.fileName}`}
              onClick={() => removeFile(f)}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <label>
        Add files <input className="kqi-add-files" type="file" multiple onChange={e => addFiles(e.target.files)} />
      </label>
      {adding
        .filter(f => !f.storedPath)
        .map(f => (
          <div key={f.file.name + f.file.size + f.file.lastModified} className="kqi-upload">
            <ProgressBar done={f.done} total={f.file.size} label={f.file.name} />
            {f.error ? <span className="kqi-upload-error">{f.error}</span> : null}
          </div>
        ))}
      <div className="kqi-buttons">
        <button className="jp-mod-styled kqi-edit-data-open" onClick={() => setEditing(true)}>
          Edit
        </button>
        <button className="jp-mod-styled kqi-run-preprocessing" onClick={() => runPreprocessing(props.model, [d.id])}>
          Run preprocessing
        </button>
        <button className="jp-mod-styled jp-mod-warn kqi-delete" onClick={remove}>
          Delete
        </button>
      </div>
      <LineageView type="data" id={d.id} model={props.model} />
    </div>
  );
}

export function DataPanel(props: { model: KqiModel }): JSX.Element {
  return (
    <ResourcePanel<IData>
      model={props.model}
      name="data"
      className="kqi-data-panel"
      title="Data"
      newLabel="New data"
      renderNew={form => <NewData {...form} />}
      path="data"
      sorts={NAME_SORTS}
      textFilters={[
        { placeholder: 'Name', param: 'Name' },
        { placeholder: 'Tag', param: 'tag' }
      ]}
      dragData={d => JSON.stringify({ id: d.id, name: d.name })}
      renderRow={d => (
        <>
          <span className="kqi-id">{d.id}</span> <span className="kqi-name">{d.name}</span>{' '}
          <span className="kqi-dim">{d.tags.join(' ')}</span>
          <WideColumns
            cells={[
              ['memo', d.memo ?? ''],
              ['created', shortTime(d.createdAt)],
              ['by', d.createdBy ?? '']
            ]}
          />
        </>
      )}
      renderDetails={(d, c) => (
        <DataDetails data={d} model={props.model} onError={c.onError} onDeleted={c.close} onChanged={c.refresh} />
      )}
      renderMarked={items => (
        <button
          className="jp-mod-styled kqi-run-preprocessing-marked"
          title="Ctrl/⌘-click rows to choose several"
          onClick={() =>
            runPreprocessing(
              props.model,
              items.map(i => i.id)
            )
          }
        >
          Run preprocessing
        </button>
      )}
    />
  );
}

/**
 * The Datasets panel: list with filters, details, delete, and building a
 * dataset by dragging data from the "All data" list into training,
 * validation and testing.
 */
import * as React from 'react';

import { Details, FilterBox, VirtualList, WideColumns } from '../components';
import { entryRows, lockedLabel, shortTime } from '../format';
import { jsonBody, requestAPI, requestPage } from '../handler';
import { KqiModel } from '../model';
import { IData, IDataset, IRef } from '../types';
import { INewFormProps, NAME_SORTS, ResourcePanel } from './common';

function DropZone(props: {
  type: string;
  items: IRef[];
  onDrop: (item: IRef) => void;
  onRemove: (item: IRef) => void;
}): JSX.Element {
  const [over, setOver] = React.useState(false);
  return (
    <div
      className={`kqi-dropzone kqi-drop-${props.type}` + (over ? ' kqi-over' : '')}
      onDragOver={e => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={e => {
        e.preventDefault();
        setOver(false);
        const raw = e.dataTransfer.getData('application/x-kqi-data');
        if (raw) {
          props.onDrop(JSON.parse(raw));
        }
      }}
    >
      <div className="kqi-dropzone-title">
        {props.type} ({props.items.length})
      </div>
      {props.items.map(item => (
        <div key={item.id} className="kqi-chip">
          {item.id}:{item.name}{' '}
          <button className="kqi-link" title="Remove" onClick={() => props.onRemove(item)}>
            ×
          </button>
        </div>
      ))}
      {props.items.length === 0 ? <div className="kqi-dim">drop data here</div> : null}
    </div>
  );
}

const TYPES = ['training', 'validation', 'testing'];

/** What a New dataset form starts from: a dataset to copy (its name, memo and entries by type). */
export interface IDatasetSeed {
  name: string;
  memo?: string;
  entries: Record<string, IRef[]>;
}

function NewDataset(props: INewFormProps<IDataset>): JSX.Element {
  const seed = props.seed as IDatasetSeed | undefined;
  const [name, setName] = React.useState(seed?.name ?? '');
  const [memo, setMemo] = React.useState(seed?.memo ?? '');
  const [filter, setFilter] = React.useState('');
  const [entries, setEntries] = React.useState<Record<string, IRef[]>>({
    training: [],
    validation: [],
    testing: [],
    ...(seed?.entries ?? {})
  });
  const add = (type: string, item: IRef) =>
    setEntries(old => (old[type].some(i => i.id === item.id) ? old : { ...old, [type]: [...old[type], item] }));
  const remove = (type: string, item: IRef) =>
    setEntries(old => ({ ...old, [type]: old[type].filter(i => i.id !== item.id) }));
  const create = async () => {
    const body = {
      name: name.trim(),
      memo,
      entries: Object.fromEntries(TYPES.map(t => [t, entries[t].map(i => ({ id: i.id }))]))
    };
    try {
      props.onCreated(await requestAPI<IDataset>('datasets', jsonBody('POST', body)));
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <div className="kqi-form kqi-new-dataset">
      <h3>New dataset</h3>
      <label>
        Name <input className="kqi-dataset-name" value={name} onChange={e => setName(e.target.value)} />
      </label>
      <label>
        Memo <input value={memo} onChange={e => setMemo(e.target.value)} />
      </label>
      <div className="kqi-builder">
        <div className="kqi-builder-all">
          <div className="kqi-dropzone-title">All data</div>
          <FilterBox placeholder="Name" onChange={setFilter} />
          <div className="kqi-builder-list">
            <VirtualList<IData>
              version={filter}
              fetchPage={(page, perPage) => requestPage<IData>('data', { Name: filter, page, perPage })}
              rowKey={d => d.id}
              onError={props.onError}
              dragData={d => JSON.stringify({ id: d.id, name: d.name })}
              renderRow={d => (
                <span className="kqi-draggable">
                  {d.id}:{d.name}
                </span>
              )}
            />
          </div>
        </div>
        <div className="kqi-builder-zones">
          {TYPES.map(t => (
            <DropZone key={t} type={t} items={entries[t]} onDrop={i => add(t, i)} onRemove={i => remove(t, i)} />
          ))}
        </div>
      </div>
      <div className="kqi-buttons">
        <button className="jp-mod-styled jp-mod-accept kqi-create-dataset" disabled={!name.trim()} onClick={create}>
          Create dataset
        </button>
        <button className="jp-mod-styled" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function DatasetDetails(props: {
  id: number;
  model: KqiModel;
  onDeleted: () => void;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [dataset, setDataset] = React.useState<IDataset | null>(null);
  React.useEffect(() => {
    setDataset(null);
    requestAPI<IDataset>(`datasets/${props.id}`).then(setDataset, props.onError);
  }, [props.id]);
  if (!dataset) {
    return <div className="kqi-detail-pane">Loading…</div>;
  }
  const remove = async () => {
    if (!window.confirm(`Delete dataset ${dataset.id}:${dataset.name}?`)) {
      return;
    }
    try {
      await requestAPI(`datasets/${dataset.id}`, { method: 'DELETE' });
      props.onDeleted();
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <div className="kqi-detail-pane kqi-dataset-details">
      <Details
        rows={[
          ['ID', dataset.id],
          ['Name', dataset.name],
          ['Memo', dataset.memo],
          ['Locked', lockedLabel(dataset.isLocked)],
          ...entryRows(dataset)
        ]}
      />
      <div className="kqi-buttons">
        <button
          className="jp-mod-styled kqi-copy-dataset"
          onClick={() => {
            const copied: IDatasetSeed = {
              name: `${dataset.name}-copy`,
              memo: dataset.memo,
              entries: Object.fromEntries(
                TYPES.map(t => [t, (dataset.entries?.[t] ?? []).map(d => ({ id: d.id, name: d.name }))])
              )
            };
            props.model.open({ panel: 'datasets', seed: copied });
          }}
        >
          Copy
        </button>
        <button className="jp-mod-styled jp-mod-warn kqi-delete" onClick={remove}>
          Delete
        </button>
      </div>
    </div>
  );
}

export function DatasetsPanel(props: { model: KqiModel }): JSX.Element {
  return (
    <ResourcePanel<IDataset>
      model={props.model}
      name="datasets"
      className="kqi-datasets-panel"
      title="Datasets"
      newLabel="New dataset"
      renderNew={form => <NewDataset {...form} />}
      hideWhileCreating
      path="datasets"
      textFilters={[{ placeholder: 'Name', param: 'Name' }]}
      sorts={NAME_SORTS}
      renderRow={d => (
        <>
          <span className="kqi-id">{d.id}</span> <span className="kqi-name">{d.name}</span>{' '}
          <span className="kqi-dim">{d.memo}</span>
          <WideColumns cells={[['created', shortTime(d.createdAt)]]} />
        </>
      )}
      renderDetails={(d, c) => <DatasetDetails id={d.id} model={props.model} onError={c.onError} onDeleted={c.close} />}
    />
  );
}

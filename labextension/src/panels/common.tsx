/**
 * What the resource panels (Data, Datasets, Preprocessing, Trainings,
 * Inference, Notebooks) share: the tenant switcher, a toolbar with the title,
 * New and Reload, the error banner, the New form, the filters row, the list
 * (Ctrl/⌘-click marks several rows where the panel has actions on them) and
 * the selected row's details; and answering other panels' open requests
 * (show a row, open the New form with a seed). A panel says only what
 * differs: its title, form, filters, rows and details.
 */
import * as React from 'react';

import { ErrorBanner, FilterBox, TenantSwitcher, useErrors, VirtualList } from '../components';
import { requestAPI, requestPage } from '../handler';
import { IOpenRequest, KqiModel } from '../model';
import { toggleMarked } from '../selection';

/**
 * What a New form is given: it calls `onCreated` with what it made, which is
 * then selected. `seed` is what another panel asked the form to start from.
 */
export interface INewFormProps<T> {
  seed?: unknown;
  onCreated: (item: T) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}

/** What a details pane is given: report errors, reload the list, or close (after a delete). */
export interface IDetailsContext {
  onError: (e: unknown) => void;
  refresh: () => void;
  close: () => void;
}

/** A text filter of the list: its box's placeholder and the query parameter it sets. */
export interface ITextFilter {
  placeholder: string;
  param: string;
}

export interface IResourcePanelProps<T extends { id: number }> {
  model: KqiModel;
  /** The panel's name in open requests (`KqiModel.open`), e.g. `data`; the panel shows `{path}/{show}`. */
  name?: string;
  /** The panel's own class, e.g. `kqi-data-panel`. */
  className: string;
  title: string;
  /** The New button's label, e.g. "New data". */
  newLabel: string;
  renderNew: (form: INewFormProps<T>) => React.ReactNode;
  /** Hide the filters, list and details while the New form is open. */
  hideWhileCreating?: boolean;
  /** The list's API path, e.g. `data`. */
  path: string;
  textFilters: ITextFilter[];
  /** The statuses of a status filter (`Status`), if the list has one. */
  statuses?: string[];
  /** The orders the list offers (`Sort`: value, label), the first the default; none: the service's order. */
  sorts?: [string, string][];
  /** Applied to each row as it arrives (e.g. to note when it did). */
  receive?: (item: T) => T;
  renderRow: (item: T) => React.ReactNode;
  dragData?: (item: T) => string;
  renderDetails: (item: T, context: IDetailsContext) => React.ReactNode;
  /** Actions on the rows marked with Ctrl/⌘/Shift-click (and the selected one), shown under the list. */
  renderMarked?: (items: T[]) => React.ReactNode;
}

/** The orders of a list by id and name (`Sort`, added to the contract); the service's own order first. */
export const NAME_SORTS: [string, string][] = [
  ['', 'newest first'],
  ['id', 'oldest first'],
  ['name', 'name A→Z'],
  ['-name', 'name Z→A']
];

/** The orders of a list of runs: by id, name and status. */
export const RUN_SORTS: [string, string][] = [...NAME_SORTS, ['status', 'status']];

/** A resource panel: toolbar, New form, filters, list and the selected row's details. */
export function ResourcePanel<T extends { id: number }>(props: IResourcePanelProps<T>): JSX.Element {
  const [error, setError, clearError] = useErrors();
  const [filters, setFilters] = React.useState<Record<string, string>>({});
  const [status, setStatus] = React.useState('');
  const [sort, setSort] = React.useState(props.sorts?.[0]?.[0] ?? '');
  const [reload, setReload] = React.useState(0);
  const [selected, setSelected] = React.useState<T | null>(null);
  const [creating, setCreating] = React.useState(false);
  const [seed, setSeed] = React.useState<{ value: unknown; n: number }>({ value: undefined, n: 0 });
  const [marked, setMarked] = React.useState<T[]>([]);
  React.useEffect(() => {
    if (!props.name) {
      return;
    }
    const answer = (request: IOpenRequest | null) => {
      if (!request) {
        return;
      }
      if (request.seed !== undefined) {
        setSeed(old => ({ value: request.seed, n: old.n + 1 }));
        setCreating(true);
      }
      if (request.show !== undefined) {
        setCreating(false);
        requestAPI<T>(`${props.path}/${request.show}`).then(item => {
          setSelected(item);
          setMarked([item]);
        }, setError);
      }
    };
    const requested = (model: KqiModel, request: IOpenRequest) => {
      if (request.panel === props.name) {
        answer(model.take(request.panel));
      }
    };
    answer(props.model.take(props.name));
    props.model.openRequested.connect(requested);
    return () => {
      props.model.openRequested.disconnect(requested);
    };
  }, []);
  React.useEffect(() => {
    const changed = () => {
      setSelected(null);
      setMarked([]);
      setReload(r => r + 1);
    };
    props.model.tenantChanged.connect(changed);
    return () => {
      props.model.tenantChanged.disconnect(changed);
    };
  }, []);
  const refresh = () => setReload(r => r + 1);
  const announce = (id: number | null) => {
    if (props.name) {
      props.model.selected.emit({ panel: props.name, id });
    }
  };
  const query: Record<string, string> = {};
  for (const f of props.textFilters) {
    query[f.param] = filters[f.param] ?? '';
  }
  if (props.statuses) {
    query.Status = status;
  }
  if (props.sorts) {
    query.Sort = sort;
  }
  const context: IDetailsContext = {
    onError: setError,
    refresh,
    close: () => {
      setSelected(null);
      setMarked([]);
      announce(null);
      refresh();
    }
  };
  return (
    <div className={`kqi-panel ${props.className}`}>
      <TenantSwitcher model={props.model} onError={setError} />
      <div className="kqi-toolbar">
        <h2>{props.title}</h2>
        <button
          className="jp-mod-styled kqi-new"
          onClick={() => {
            setSeed(old => ({ value: undefined, n: old.n + 1 }));
            setCreating(true);
          }}
        >
          {props.newLabel}
        </button>
        <button className="jp-mod-styled" onClick={refresh}>
          Reload
        </button>
      </div>
      <ErrorBanner error={error} onClose={clearError} />
      {creating ? (
        <React.Fragment key={seed.n}>
          {props.renderNew({
            seed: seed.value,
            onError: setError,
            onCancel: () => setCreating(false),
            onCreated: item => {
              setCreating(false);
              clearError();
              setSelected(item);
              announce(item.id);
              setMarked([item]);
              refresh();
            }
          })}
        </React.Fragment>
      ) : null}
      {creating && props.hideWhileCreating ? null : (
        <>
          <div className="kqi-filters">
            {props.textFilters.map(f => (
              <FilterBox
                key={f.param}
                placeholder={f.placeholder}
                onChange={v => setFilters(old => ({ ...old, [f.param]: v }))}
              />
            ))}
            {props.sorts ? (
              <select className="kqi-sort" aria-label="Order" value={sort} onChange={e => setSort(e.target.value)}>
                {props.sorts.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            ) : null}
            {props.statuses ? (
              <select className="kqi-status-filter" value={status} onChange={e => setStatus(e.target.value)}>
                <option value="">any status</option>
                {props.statuses.map(s => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            ) : null}
          </div>
          <VirtualList<T>
            version={`${Object.values(query).join('|')}|${reload}`}
            fetchPage={async (page, perPage) => {
              const result = await requestPage<T>(props.path, { ...query, page, perPage });
              const receive = props.receive;
              return receive ? { ...result, items: result.items.map(item => receive(item)) } : result;
            }}
            rowKey={item => item.id}
            selected={selected?.id ?? null}
            marked={props.renderMarked ? marked.map(m => m.id) : undefined}
            onSelect={(item, additive) => {
              setSelected(item);
              announce(item.id);
              setMarked(old => {
                const ids = toggleMarked(
                  old.map(m => m.id),
                  item.id,
                  additive
                );
                return ids.map(id => (id === item.id ? item : old.find(m => m.id === id)!));
              });
            }}
            onError={setError}
            dragData={props.dragData}
            renderRow={props.renderRow}
          />
          {props.renderMarked && marked.length ? (
            <div className="kqi-marked-actions">
              <span className="kqi-marked-count">{marked.length} selected</span> {props.renderMarked(marked)}
            </div>
          ) : null}
          {selected ? props.renderDetails(selected, context) : null}
        </>
      )}
    </div>
  );
}

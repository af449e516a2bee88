/**
 * Building blocks of the panels: the error banner, the tenant switcher, a
 * server-paged virtual list and a key/value details table.
 */
import * as React from 'react';

import { messageOf } from './errors';
import { itemCount, tenantLabel } from './format';
import { IPage } from './handler';
import { KqiModel } from './model';
import { IAccount } from './types';

/** State of the panel's last failed call, shown until dismissed or the next success. */
export function useErrors(): [string | null, (e: unknown) => void, () => void] {
  const [error, setError] = React.useState<string | null>(null);
  return [error, (e: unknown) => setError(messageOf(e)), () => setError(null)];
}

export function ErrorBanner(props: { error: string | null; onClose: () => void }): JSX.Element | null {
  if (!props.error) {
    return null;
  }
  return (
    <div className="kqi-error" role="alert">
      <span className="kqi-error-text">{props.error}</span>
      <button className="kqi-link" title="Dismiss" onClick={props.onClose}>
        ×
      </button>
    </div>
  );
}

/** The selected tenant and a menu to switch to another of the user's tenants. */
export function TenantSwitcher(props: { model: KqiModel; onError: (e: unknown) => void }): JSX.Element {
  const [account, setAccount] = React.useState<IAccount | null>(props.model.account);
  React.useEffect(() => {
    const update = (_: KqiModel, a: IAccount | null) => setAccount(a);
    props.model.changed.connect(update);
    if (!props.model.account) {
      props.model.load().catch(props.onError);
    }
    return () => {
      props.model.changed.disconnect(update);
    };
  }, [props.model]);
  if (!account) {
    return <div className="kqi-tenant">…</div>;
  }
  return (
    <div className="kqi-tenant">
      <label>
        Tenant{' '}
        <select
          className="kqi-tenant-select"
          value={account.selectedTenant?.id ?? ''}
          onChange={e => props.model.switchTenant(Number(e.target.value)).catch(props.onError)}
        >
          {account.tenants.map(t => (
            <option key={t.id} value={t.id}>
              {tenantLabel(t)}
            </option>
          ))}
        </select>
      </label>
      <span className="kqi-user">{account.userName}</span>
    </div>
  );
}

export interface IVirtualListProps<T> {
  /** Fetches one page (1-based) of `perPage` rows with the total count. */
  fetchPage: (page: number, perPage: number) => Promise<IPage<T>>;
  /** Changing it drops every cached page (new filters, a reload). */
  version: string;
  renderRow: (item: T) => React.ReactNode;
  rowKey: (item: T) => string | number;
  /** A row was clicked; `additive` when with Ctrl, ⌘ or Shift (to mark several). */
  onSelect?: (item: T, additive: boolean) => void;
  selected?: string | number | null;
  /** Rows shown as marked besides the selected one. */
  marked?: (string | number)[];
  onError: (e: unknown) => void;
  /** Drag source: what dragging a row carries. */
  dragData?: (item: T) => string;
  rowHeight?: number;
  perPage?: number;
}

/**
 * A list that renders only the rows in view and fetches only the pages it shows,
 * so thousands of server-side rows open as fast as one page.
 */
export function VirtualList<T>(props: IVirtualListProps<T>): JSX.Element {
  const rowHeight = props.rowHeight ?? 28;
  const perPage = props.perPage ?? 50;
  const [total, setTotal] = React.useState<number | null>(null);
  const [pages, setPages] = React.useState<Map<number, T[]>>(new Map());
  const [scrollTop, setScrollTop] = React.useState(0);
  const [height, setHeight] = React.useState(400);
  const loading = React.useRef(new Set<number>());
  const box = React.useRef<HTMLDivElement>(null);
  const version = React.useRef(props.version);

  const load = (page: number) => {
    if (loading.current.has(page)) {
      return;
    }
    loading.current.add(page);
    const asked = props.version;
    props
      .fetchPage(page, perPage)
      .then(result => {
        if (version.current !== asked) {
          return;
        }
        setTotal(result.total);
        setPages(old => new Map(old).set(page, result.items));
      })
      .catch(e => {
        loading.current.delete(page);
        props.onError(e);
      });
  };

  React.useEffect(() => {
    version.current = props.version;
    loading.current = new Set();
    setPages(new Map());
    setTotal(null);
    load(1);
  }, [props.version]);

  React.useEffect(() => {
    const el = box.current;
    if (!el) {
      return;
    }
    const observer = new ResizeObserver(() => setHeight(el.clientHeight || 400));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const count = total ?? 0;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - 5);
  const last = Math.min(count, Math.ceil((scrollTop + height) / rowHeight) + 5);
  const rows: React.ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const page = Math.floor(i / perPage) + 1;
    const item = pages.get(page)?.[i % perPage];
    if (item === undefined) {
      if (!pages.has(page)) {
        load(page);
      }
      rows.push(
        <div key={`loading-${i}`} className="kqi-row kqi-row-loading" style={{ top: i * rowHeight, height: rowHeight }}>
          …
        </div>
      );
      continue;
    }
    const key = props.rowKey(item);
    rows.push(
      <div
        key={key}
        className={
          'kqi-row' +
          (props.selected === key ? ' kqi-selected' : '') +
          (props.marked?.includes(key) ? ' kqi-marked' : '')
        }
        style={{ top: i * rowHeight, height: rowHeight }}
        onClick={e => props.onSelect?.(item, e.ctrlKey || e.metaKey || e.shiftKey)}
        draggable={!!props.dragData}
        onDragStart={e => {
          if (props.dragData) {
            e.dataTransfer.setData('application/x-kqi-data', props.dragData(item));
            e.dataTransfer.effectAllowed = 'copy';
          }
        }}
      >
        {props.renderRow(item)}
      </div>
    );
  }
  return (
    <>
      <div className="kqi-list-count">{itemCount(total)}</div>
      <div className="kqi-list" ref={box} onScroll={e => setScrollTop(e.currentTarget.scrollTop)}>
        <div className="kqi-list-body" style={{ height: count * rowHeight }}>
          {rows}
        </div>
      </div>
    </>
  );
}

/** A two-column table of a detail model's fields. */
export function Details(props: { rows: [string, React.ReactNode][] }): JSX.Element {
  return (
    <table className="kqi-details">
      <tbody>
        {props.rows.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{v ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A filter input that applies on Enter or after a short pause. */
export function FilterBox(props: { placeholder: string; onChange: (value: string) => void }): JSX.Element {
  const [value, setValue] = React.useState('');
  React.useEffect(() => {
    const timer = setTimeout(() => props.onChange(value.trim()), 300);
    return () => clearTimeout(timer);
  }, [value]);
  return (
    <input
      className="kqi-filter"
      placeholder={props.placeholder}
      value={value}
      onChange={e => setValue(e.target.value)}
    />
  );
}

/**
 * A list row's extra columns (created, memo, resources…): shown where the screen is wide (the console's
 * tables), hidden in JupyterLab's narrow side panels. `cells` are (column, text) pairs.
 */
export function WideColumns(props: { cells: [string, string][] }): JSX.Element {
  return (
    <>
      {props.cells.map(([column, text]) => (
        <span key={column} className={`kqi-col kqi-col-${column}`} title={text}>
          {text}
        </span>
      ))}
    </>
  );
}

/** What a change did, said once it is done (a live region); nothing when `text` is empty. */
export function SavedNote(props: { text: string }): JSX.Element | null {
  return props.text ? (
    <div className="kqi-saved" role="status">
      {props.text}
    </div>
  ) : null;
}

/**
 * @jest-environment jsdom
 */
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import * as React from 'react';

import { KqiError } from '../src/errors';
import { IPage, requestAPI, requestPage } from '../src/handler';
import { KqiModel } from '../src/model';
import { IDetailsContext, INewFormProps, ResourcePanel } from '../src/panels/common';
import { IAccount, IRun } from '../src/types';

jest.mock('../src/handler', () => ({
  requestAPI: jest.fn(),
  requestPage: jest.fn(),
  jsonBody: (method: string, body?: unknown) => ({ method, body: JSON.stringify(body) })
}));

const api = requestAPI as jest.MockedFunction<typeof requestAPI>;
const page = requestPage as jest.MockedFunction<typeof requestPage>;

class NoResizeObserver {
  observe(): void {}
  disconnect(): void {}
}

const ACCOUNT: IAccount = {
  userName: 'alice',
  selectedTenant: { id: 1, name: 'lab' },
  tenants: [
    { id: 1, name: 'lab' },
    { id: 2, name: 'prod', displayName: 'Production' }
  ]
};

const ROWS: IRun[] = [
  { id: 11, name: 'mnist', status: 'Running' },
  { id: 12, name: 'cifar', status: 'Completed' }
];

const pageOf = (items: IRun[]): Promise<IPage<unknown>> => Promise.resolve({ items, total: items.length });

let context: IDetailsContext | null = null;
let form: INewFormProps<IRun> | null = null;

let markedItems: IRun[] = [];

function Panel(props: { model: KqiModel; hideWhileCreating?: boolean; name?: string; marking?: boolean }): JSX.Element {
  return (
    <ResourcePanel<IRun>
      model={props.model}
      name={props.name}
      className="kqi-test-panel"
      title="Trainings"
      newLabel="New training"
      hideWhileCreating={props.hideWhileCreating}
      renderNew={f => {
        form = f;
        return <div className="test-new-form">the New form</div>;
      }}
      path="training"
      textFilters={[{ placeholder: 'Name', param: 'Name' }]}
      statuses={['Pending', 'Running']}
      receive={r => ({ ...r, name: r.name.toUpperCase() })}
      renderRow={r => (
        <span className="test-row">
          {r.id} {r.name} {r.status}
        </span>
      )}
      renderDetails={(r, c) => {
        context = c;
        return <div className="test-details">Details of {r.id}</div>;
      }}
      renderMarked={
        props.marking
          ? items => {
              markedItems = items;
              return <button className="test-marked-action">Act on {items.map(i => i.id).join(',')}</button>;
            }
          : undefined
      }
    />
  );
}

/** The rows the list shows, as text. */
const rowTexts = (container: HTMLElement) =>
  Array.from(container.querySelectorAll('.test-row')).map(row => row.textContent);

beforeAll(() => {
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = NoResizeObserver;
});

beforeEach(() => {
  api.mockReset().mockResolvedValue(ACCOUNT);
  page.mockReset().mockImplementation(() => pageOf(ROWS));
  context = null;
  form = null;
  markedItems = [];
});

describe('ResourcePanel', () => {
  it('shows the toolbar, the tenant switcher and the first page of rows', async () => {
    const { container } = render(<Panel model={new KqiModel()} />);
    expect(screen.getByRole('heading').textContent).toBe('Trainings');
    expect(screen.getByText('New training').tagName).toBe('BUTTON');
    expect(screen.getByText('Reload').tagName).toBe('BUTTON');
    expect(container.querySelector('.kqi-panel.kqi-test-panel')).not.toBeNull();

    await screen.findByText('alice');
    const tenant = container.querySelector<HTMLSelectElement>('.kqi-tenant-select')!;
    expect(Array.from(tenant.options).map(o => o.textContent)).toEqual(['lab', 'Production']);
    expect(tenant.value).toBe('1');

    await screen.findByText('2 items');
    // rows went through `receive` before rendering
    expect(rowTexts(container)).toEqual(['11 MNIST Running', '12 CIFAR Completed']);
    expect(page).toHaveBeenCalledTimes(1);
    expect(page).toHaveBeenCalledWith('training', { Name: '', Status: '', page: 1, perPage: 50 });
  });

  it('asks again with what is typed in a filter and the chosen status', async () => {
    const { container } = render(<Panel model={new KqiModel()} />);
    await screen.findByText('2 items');
    const status = container.querySelector<HTMLSelectElement>('.kqi-status-filter')!;
    expect(Array.from(status.options).map(o => o.textContent)).toEqual(['any status', 'Pending', 'Running']);

    page.mockImplementation(() => pageOf([ROWS[0]]));
    fireEvent.change(screen.getByPlaceholderText('Name'), { target: { value: ' mni ' } });
    await screen.findByText('1 item');
    expect(page).toHaveBeenLastCalledWith('training', { Name: 'mni', Status: '', page: 1, perPage: 50 });
    expect(rowTexts(container)).toEqual(['11 MNIST Running']);

    fireEvent.change(status, { target: { value: 'Running' } });
    await waitFor(() =>
      expect(page).toHaveBeenLastCalledWith('training', { Name: 'mni', Status: 'Running', page: 1, perPage: 50 })
    );
    expect(status.value).toBe('Running');
  });

  it('shows the selected row, and closing it reloads the list', async () => {
    const { container } = render(<Panel model={new KqiModel()} />);
    await screen.findByText('2 items');
    expect(container.querySelector('.test-details')).toBeNull();

    fireEvent.click(screen.getByText('12 CIFAR Completed'));
    expect(container.querySelector('.test-details')!.textContent).toBe('Details of 12');
    expect(container.querySelector('.kqi-selected')!.textContent).toBe('12 CIFAR Completed');

    act(() => context!.close());
    expect(container.querySelector('.test-details')).toBeNull();
    await waitFor(() => expect(page).toHaveBeenCalledTimes(2));
  });

  it('opens the New form, and selects what it created', async () => {
    const { container } = render(<Panel model={new KqiModel()} hideWhileCreating />);
    await screen.findByText('2 items');
    expect(container.querySelector('.test-new-form')).toBeNull();

    fireEvent.click(screen.getByText('New training'));
    expect(container.querySelector('.test-new-form')!.textContent).toBe('the New form');
    // hideWhileCreating: no filters or list behind the form
    expect(container.querySelector('.kqi-filters')).toBeNull();

    act(() => form!.onCreated({ id: 13, name: 'new', status: 'Pending' }));
    expect(container.querySelector('.test-new-form')).toBeNull();
    expect(container.querySelector('.test-details')!.textContent).toBe('Details of 13');
    await screen.findByText('2 items');
  });

  it("shows a failed page's error until dismissed", async () => {
    page.mockRejectedValueOnce(new KqiError(403, 'Not a member of this tenant'));
    render(<Panel model={new KqiModel()} />);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toBe('Not a member of this tenant (403)×');
    fireEvent.click(screen.getByTitle('Dismiss'));
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('reloads the list and drops the selection when the tenant changes', async () => {
    const model = new KqiModel();
    const { container } = render(<Panel model={model} />);
    await screen.findByText('2 items');
    fireEvent.click(screen.getByText('11 MNIST Running'));
    expect(container.querySelector('.test-details')).not.toBeNull();

    page.mockImplementation(() => pageOf([]));
    api.mockResolvedValueOnce({ ...ACCOUNT, selectedTenant: ACCOUNT.tenants[1] });
    fireEvent.change(container.querySelector('.kqi-tenant-select')!, { target: { value: '2' } });
    await screen.findByText('0 items');
    expect(api).toHaveBeenLastCalledWith('account/selected-tenant', { method: 'PUT', body: '{"tenantId":2}' });
    expect(container.querySelector('.test-details')).toBeNull();
    expect(rowTexts(container)).toEqual([]);
    expect(container.querySelector<HTMLSelectElement>('.kqi-tenant-select')!.value).toBe('2');
  });

  it('answers open requests: a seed opens the New form with it, a show selects the one fetched', async () => {
    const model = new KqiModel();
    // asked before the panel was ever rendered
    model.open({ panel: 'trainings', seed: { parentIds: '7' } });
    const { container } = render(<Panel model={model} name="trainings" />);
    await screen.findByText('2 items');
    expect(container.querySelector('.test-new-form')).not.toBeNull();
    expect(form!.seed).toEqual({ parentIds: '7' });

    api.mockResolvedValueOnce({ id: 42, name: 'far', status: 'Completed' });
    act(() => model.open({ panel: 'trainings', show: 42 }));
    await waitFor(() => expect(container.querySelector('.test-details')!.textContent).toBe('Details of 42'));
    expect(api).toHaveBeenLastCalledWith('training/42');
    expect(container.querySelector('.test-new-form')).toBeNull();

    // another panel's request is not this one's
    act(() => model.open({ panel: 'data', show: 1 }));
    expect(model.take('data')).toEqual({ panel: 'data', show: 1 });
    // the New button opens a form without a seed
    fireEvent.click(screen.getByText('New training'));
    expect(form!.seed).toBeUndefined();
  });

  it('marks several rows with Ctrl-click and offers the actions on them', async () => {
    const { container } = render(<Panel model={new KqiModel()} marking />);
    await screen.findByText('2 items');
    expect(container.querySelector('.test-marked-action')).toBeNull();

    fireEvent.click(screen.getByText('11 MNIST Running'));
    expect(container.querySelector('.test-marked-action')!.textContent).toBe('Act on 11');
    fireEvent.click(screen.getByText('12 CIFAR Completed'), { ctrlKey: true });
    expect(container.querySelector('.kqi-marked-count')!.textContent).toBe('2 selected');
    expect(markedItems.map(i => i.id)).toEqual([11, 12]);
    expect(container.querySelectorAll('.kqi-marked')).toHaveLength(2);
    // the last clicked shows its details
    expect(container.querySelector('.test-details')!.textContent).toBe('Details of 12');

    fireEvent.click(screen.getByText('11 MNIST Running'), { metaKey: true });
    expect(markedItems.map(i => i.id)).toEqual([12]);
    fireEvent.click(screen.getByText('11 MNIST Running'));
    expect(markedItems.map(i => i.id)).toEqual([11]);
  });
});

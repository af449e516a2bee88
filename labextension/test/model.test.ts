import { requestAPI } from '../src/handler';
import { KqiModel } from '../src/model';
import { IAccount, ITenant } from '../src/types';

jest.mock('../src/handler', () => ({
  requestAPI: jest.fn(),
  jsonBody: (method: string, body?: unknown) => ({ method, body: JSON.stringify(body) })
}));

const request = requestAPI as jest.MockedFunction<typeof requestAPI>;

const lab: ITenant = { id: 1, name: 'lab' };
const prod: ITenant = { id: 2, name: 'prod', displayName: 'Production' };
const account = (selected: ITenant | null): IAccount => ({
  userName: 'alice',
  selectedTenant: selected,
  tenants: [lab, prod]
});

beforeEach(() => request.mockReset());

describe('KqiModel', () => {
  it('loads the account once however many panels ask', async () => {
    request.mockResolvedValueOnce(account(lab));
    const model = new KqiModel();
    const shown: (IAccount | null)[] = [];
    model.changed.connect((_, a) => shown.push(a));
    const [a, b] = await Promise.all([model.load(), model.load()]);
    expect(a).toBe(b);
    expect(request).toHaveBeenCalledTimes(1);
    expect(request).toHaveBeenCalledWith('account');
    expect(model.account?.userName).toBe('alice');
    expect(shown).toHaveLength(1);
  });

  it('asks again after a failed load', async () => {
    request.mockRejectedValueOnce(new Error('down')).mockResolvedValueOnce(account(lab));
    const model = new KqiModel();
    await expect(model.load()).rejects.toThrow('down');
    await expect(model.load()).resolves.toEqual(account(lab));
    expect(request).toHaveBeenCalledTimes(2);
  });

  it('switches tenant with PUT and tells the panels only when it changed', async () => {
    request.mockResolvedValueOnce(account(lab));
    const model = new KqiModel();
    await model.load();
    const switched: (ITenant | null)[] = [];
    model.tenantChanged.connect((_, t) => switched.push(t));

    request.mockResolvedValueOnce(account(prod));
    await model.switchTenant(2);
    expect(request).toHaveBeenLastCalledWith('account/selected-tenant', { method: 'PUT', body: '{"tenantId":2}' });
    expect(switched).toEqual([prod]);

    request.mockResolvedValueOnce(account(prod));
    await model.switchTenant(2);
    expect(switched).toEqual([prod]);
    // the switched account is what a later load answers, without asking
    await expect(model.load()).resolves.toEqual(account(prod));
    expect(request).toHaveBeenCalledTimes(3);
  });

  it('keeps a request to a panel until that panel takes it, once', () => {
    const model = new KqiModel();
    const asked: string[] = [];
    model.openRequested.connect((_, r) => asked.push(r.panel));
    model.open({ panel: 'inference', seed: { parentIds: '7' } });
    model.open({ panel: 'data', show: 3 });
    model.open({ panel: 'data', show: 4 });
    expect(asked).toEqual(['inference', 'data', 'data']);
    // a panel rendered later still gets its request; the latest one wins
    expect(model.take('data')).toEqual({ panel: 'data', show: 4 });
    expect(model.take('data')).toBeNull();
    expect(model.take('inference')).toEqual({ panel: 'inference', seed: { parentIds: '7' } });
    expect(model.take('trainings')).toBeNull();
  });
});

import { pathOf, routeOf, sectionOfPanel } from '../src/console/routes';
import { consoleHost } from '../src/console/host';

const BASE = '/services/kqi/';

describe('console routes', () => {
  it('reads a section and a selected id from the path', () => {
    expect(routeOf('/services/kqi/trainings/42', BASE)).toEqual({ section: 'trainings', id: 42 });
    expect(routeOf('/services/kqi/data', BASE)).toEqual({ section: 'data', id: null });
    expect(routeOf('/services/kqi/admin/users', BASE)).toEqual({ section: 'admin/users', id: null });
    expect(routeOf('/services/kqi/settings', BASE)).toEqual({ section: 'settings', id: null });
  });

  it('sends anything else to the trainings', () => {
    for (const path of ['/services/kqi/', '/services/kqi/nothing/3', '/elsewhere', '/services/kqi/admin/x']) {
      expect(routeOf(path, BASE)).toEqual({ section: 'trainings', id: null });
    }
    expect(routeOf('/services/kqi/trainings/abc', BASE)).toEqual({ section: 'trainings', id: null });
  });

  it('writes the path of a route, and maps panels to sections', () => {
    expect(pathOf({ section: 'inference', id: 7 }, BASE)).toBe('/services/kqi/inference/7');
    expect(pathOf({ section: 'admin/nodes', id: null }, BASE)).toBe('/services/kqi/admin/nodes');
    expect(sectionOfPanel('inference')).toBe('inference');
    expect(sectionOfPanel('nothing')).toBeNull();
  });
});

describe('console host', () => {
  const host = consoleHost(BASE, { protocol: 'https:', host: 'kqi.example:8443' });

  it('calls the API and the routes of a run under the service', () => {
    expect(host.apiUrl('data', { Name: 'x', Tag: '' })).toBe('/services/kqi/api/v2/data?Name=x');
    expect(host.runUrl('inference', 3, 'log', { offset: 10 })).toBe('/services/kqi/api/v2/inferences/3/log?offset=10');
    expect(host.runUrl('training', 4, 'output', { path: '/a b.txt' })).toBe(
      '/services/kqi/api/v2/training/4/output?path=%2Fa+b.txt'
    );
    expect(host.shellUrl('preprocessing', 5)).toBe('wss://kqi.example:8443/services/kqi/api/v2/preprocessing/5/shell');
    expect(host.thisServer).toBe('');
  });
});

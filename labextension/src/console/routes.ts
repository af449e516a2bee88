/**
 * The console's URLs: `{base}{section}[/{id}]` (e.g. `/services/kqi/trainings/42`,
 * `/services/kqi/admin/users`), bookmarkable and shared as they are. Pure.
 */

/** A place in the console: a section (`trainings`, `settings`, `admin/tenants`…) and a selected id, if any. */
export interface IRoute {
  section: string;
  id: number | null;
}

/** The resource screens, in the guide's menu order: their path, label and panel name (`KqiModel.open`). */
export const RESOURCE_SECTIONS = [
  { section: 'data', label: 'Data', panel: 'data' },
  { section: 'preprocessing', label: 'Preprocessing', panel: 'preprocessing' },
  { section: 'datasets', label: 'Datasets', panel: 'datasets' },
  { section: 'trainings', label: 'Trainings', panel: 'trainings' },
  { section: 'inference', label: 'Inference', panel: 'inference' },
  { section: 'notebooks', label: 'Notebooks', panel: 'notebooks' }
];

/** The system admin's screens (`admin/{name}`). */
export const ADMIN_SECTIONS = [
  { section: 'admin/tenants', label: 'Tenants' },
  { section: 'admin/users', label: 'Users' },
  { section: 'admin/roles', label: 'Roles' },
  { section: 'admin/git', label: 'Git' },
  { section: 'admin/registries', label: 'Registries' },
  { section: 'admin/storage', label: 'Storage' },
  { section: 'admin/nodes', label: 'Nodes' },
  { section: 'admin/quotas', label: 'Quotas' },
  { section: 'admin/resources', label: 'Resources' }
];

export const DEFAULT_SECTION = 'trainings';
/** A tenant manager's screen of the selected tenant's members (`/tenant/users`). */
export const MEMBERS_SECTION = 'members';
/** What runs where in the selected tenant (`/tenant/resource/…`). */
export const RESOURCES_SECTION = 'resources';
const KNOWN = new Set([
  ...RESOURCE_SECTIONS.map(s => s.section),
  ...ADMIN_SECTIONS.map(s => s.section),
  'settings',
  MEMBERS_SECTION,
  RESOURCES_SECTION
]);

/** The route of a path under `base`; unknown paths are the default section. */
export function routeOf(pathname: string, base: string): IRoute {
  const rest = pathname.startsWith(base) ? pathname.slice(base.length) : '';
  const parts = rest.split('/').filter(Boolean);
  const idAt = parts[0] === 'admin' ? 2 : 1;
  const section = parts.slice(0, idAt).join('/');
  if (!KNOWN.has(section)) {
    return { section: DEFAULT_SECTION, id: null };
  }
  const id = parts[idAt] !== undefined && /^[0-9]{1,15}$/.test(parts[idAt]) ? Number(parts[idAt]) : null;
  return { section, id };
}

/** The path of a route under `base`. */
export function pathOf(route: IRoute, base: string): string {
  return base + route.section + (route.id !== null ? `/${route.id}` : '');
}

/** The resource section a panel name belongs to. */
export function sectionOfPanel(panel: string): string | null {
  return RESOURCE_SECTIONS.find(s => s.panel === panel)?.section ?? null;
}

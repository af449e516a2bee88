/**
 * What each admin screen lists and edits, as data: its API path, its columns,
 * the fields of its create/edit form, and how the form's values become the
 * request body the contract wants. `admin.tsx` renders any of them. Pure.
 */

/** A form field. `options` is an API path answering `[{id, name}]` (select, multi), or a fixed list. */
export interface IField {
  name: string;
  label: string;
  type: 'text' | 'password' | 'number' | 'checkbox' | 'select' | 'multi' | 'memberships';
  required?: boolean;
  options?: string | { id: number; name: string }[];
  /** Shown on create only (e.g. a tenant's name or a user's password). */
  createOnly?: boolean;
}

/** One tenant of a user being made: its id, whether it is the default, whether the user manages it. */
export interface IMembership {
  id: number;
  default: boolean;
  manager: boolean;
}

export type Values = Record<string, unknown>;

export interface IColumn {
  label: string;
  value: (row: Values) => string;
}

export interface IAdminSpec {
  section: string;
  title: string;
  /** The list's API path; items are `{path}/{id}`. */
  path: string;
  /** The list's JSON lives under this key (else the body is the list). */
  listKey?: string;
  rowKey?: string;
  columns: IColumn[];
  fields?: IField[];
  /** Edit with PUT `{path}/{id}` (the form prefilled from GET `{path}/{id}`). */
  editable?: boolean;
  removable?: boolean;
  /** The create/edit body of the form's values (default: the values as they are). */
  toBody?: (values: Values, editing: boolean) => unknown;
  /** The form's values of an item read back for editing (default: the item as it is). */
  fromItem?: (item: Values) => Values;
}

const text = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const names = (v: unknown): string =>
  Array.isArray(v) ? v.map(x => (x && typeof x === 'object' ? text((x as Values).name) : text(x))).join(', ') : '';
const ids = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number).filter(n => !Number.isNaN(n)) : []);
const num = (v: unknown): number | null => (v === '' || v === null || v === undefined ? null : Number(v));

/** The addresses locked out of an account now (failed logins), or ''. A password reset unlocks them. */
export function lockedLabel(locks: unknown): string {
  const list = Array.isArray(locks) ? (locks as Values[]) : [];
  return list.map(l => `${text(l.address)} until ${text(l.lockedUntil).replace('T', ' ').replace('Z', '')}`).join(', ');
}

/** The roles the contract numbers: 1 system admin, 2 a tenant's user, 3 its manager. */
export const ROLE_ADMIN = 1;
export const ROLE_USER = 2;
export const ROLE_MANAGER = 3;

/** A user's create body from the form: system role and tenants with roles. */
export function userBody(values: Values, editing: boolean): unknown {
  const memberships = (values.tenants as IMembership[] | undefined) ?? [];
  const body: Values = {
    name: values.name,
    systemRoles: values.systemAdmin ? [ROLE_ADMIN] : [],
    tenants: memberships.map(m => ({
      id: m.id,
      default: m.default,
      roles: m.manager ? [ROLE_USER, ROLE_MANAGER] : [ROLE_USER]
    }))
  };
  if (!editing) {
    body.password = values.password;
  }
  return body;
}

/** A user's form values from the admin API's user. */
export function userValues(item: Values): Values {
  const tenants = (item.tenants as Values[] | undefined) ?? [];
  return {
    name: item.name,
    systemAdmin: ((item.systemRoles as Values[] | undefined) ?? []).length > 0,
    tenants: tenants.map(t => ({
      id: Number(t.id),
      default: !!t.default,
      manager: ((t.roles as Values[] | undefined) ?? []).some(r => Number(r.id) === ROLE_MANAGER)
    }))
  };
}

/** A tenant's body: ids as numbers, empty defaults as null. */
export function tenantBody(values: Values, editing: boolean): unknown {
  const body: Values = {
    displayName: values.displayName,
    gitIds: ids(values.gitIds),
    defaultGitId: num(values.defaultGitId),
    registryIds: ids(values.registryIds),
    defaultRegistryId: num(values.defaultRegistryId),
    storageId: num(values.storageId),
    availableInfiniteTimeNotebook: !!values.availableInfiniteTimeNotebook
  };
  if (!editing) {
    body.tenantName = values.tenantName;
  }
  return body;
}

/** Numbers as numbers, empty fields left out. */
export function plainBody(fields: IField[]): (values: Values) => unknown {
  return values => {
    const body: Values = {};
    for (const f of fields) {
      const value = values[f.name];
      if (f.type === 'number' || f.type === 'select') {
        if (value !== '' && value !== undefined && value !== null) {
          body[f.name] = Number(value);
        }
      } else if (f.type === 'checkbox') {
        body[f.name] = !!value;
      } else if (f.type === 'multi') {
        body[f.name] = ids(value);
      } else if (value !== '' && value !== undefined) {
        body[f.name] = value;
      }
    }
    return body;
  };
}

const GIT_FIELDS: IField[] = [
  { name: 'name', label: 'Name', type: 'text', required: true },
  { name: 'serviceType', label: 'Service', type: 'select', options: 'admin/git/types', required: true },
  { name: 'repositoryUrl', label: 'Repository URL', type: 'text', required: true },
  { name: 'apiUrl', label: 'API URL', type: 'text', required: true }
];
const REGISTRY_FIELDS: IField[] = [
  { name: 'name', label: 'Name', type: 'text', required: true },
  { name: 'serviceType', label: 'Service', type: 'select', options: 'admin/registry/types', required: true },
  { name: 'host', label: 'Host', type: 'text', required: true },
  { name: 'portNo', label: 'Port', type: 'number', required: true },
  { name: 'projectName', label: 'Project', type: 'text' },
  { name: 'apiUrl', label: 'API URL', type: 'text', required: true },
  { name: 'registryUrl', label: 'Registry URL', type: 'text', required: true }
];
const STORAGE_FIELDS: IField[] = [
  { name: 'name', label: 'Name', type: 'text', required: true },
  { name: 'serverUrl', label: 'Server URL', type: 'text', required: true },
  { name: 'nfsServer', label: 'NFS server', type: 'text' },
  { name: 'nfsRoot', label: 'Bucket / root', type: 'text', required: true },
  { name: 'accessKey', label: 'Access key', type: 'text' },
  { name: 'secretKey', label: 'Secret key', type: 'password' }
];
const NODE_FIELDS: IField[] = [
  { name: 'name', label: 'Name', type: 'text', required: true },
  { name: 'partition', label: 'Partition', type: 'text' },
  { name: 'accessLevel', label: 'Access', type: 'select', options: 'admin/node-access-levels', required: true },
  { name: 'assignedTenantIds', label: 'Tenants (private)', type: 'multi', options: 'admin/tenants' },
  { name: 'cpu', label: 'CPU', type: 'number' },
  { name: 'memory', label: 'Memory (GiB)', type: 'number' },
  { name: 'gpu', label: 'GPU', type: 'number' },
  { name: 'notebookEnabled', label: 'Notebooks', type: 'checkbox' },
  { name: 'tensorBoardEnabled', label: 'TensorBoard', type: 'checkbox' },
  { name: 'memo', label: 'Memo', type: 'text' }
];

export const ADMIN_SPECS: IAdminSpec[] = [
  {
    section: 'admin/tenants',
    title: 'Tenants',
    path: 'admin/tenants',
    columns: [
      { label: 'ID', value: r => text(r.id) },
      { label: 'Name', value: r => text(r.name) },
      { label: 'Display name', value: r => text(r.displayName) },
      { label: 'Created', value: r => text(r.createdAt) }
    ],
    fields: [
      { name: 'tenantName', label: 'Name', type: 'text', required: true, createOnly: true },
      { name: 'displayName', label: 'Display name', type: 'text', required: true },
      { name: 'gitIds', label: 'Git endpoints', type: 'multi', options: 'admin/git/endpoints' },
      { name: 'defaultGitId', label: 'Default git', type: 'select', options: 'admin/git/endpoints' },
      { name: 'registryIds', label: 'Registries', type: 'multi', options: 'admin/registry/endpoints' },
      { name: 'defaultRegistryId', label: 'Default registry', type: 'select', options: 'admin/registry/endpoints' },
      { name: 'storageId', label: 'Storage', type: 'select', options: 'admin/storage/endpoints', required: true },
      { name: 'availableInfiniteTimeNotebook', label: 'Unlimited notebooks', type: 'checkbox' }
    ],
    editable: true,
    removable: true,
    toBody: tenantBody
  },
  {
    section: 'admin/users',
    title: 'Users',
    path: 'admin/users',
    columns: [
      { label: 'ID', value: r => text(r.id) },
      { label: 'Name', value: r => text(r.name) },
      { label: 'System roles', value: r => names(r.systemRoles) },
      { label: 'Tenants', value: r => names(r.tenants) },
      { label: 'Locked', value: r => lockedLabel(r.lockedAddresses) }
    ],
    fields: [
      { name: 'name', label: 'Name', type: 'text', required: true, createOnly: true },
      { name: 'password', label: 'Password', type: 'password', required: true, createOnly: true },
      { name: 'systemAdmin', label: 'System admin', type: 'checkbox' },
      { name: 'tenants', label: 'Tenants', type: 'memberships', options: 'admin/tenants' }
    ],
    editable: true,
    removable: true,
    toBody: userBody,
    fromItem: userValues
  },
  {
    section: 'admin/roles',
    title: 'Roles',
    path: 'admin/roles',
    columns: [
      { label: 'ID', value: r => text(r.id) },
      { label: 'Name', value: r => text(r.name) },
      { label: 'Display name', value: r => text(r.displayName) },
      { label: 'System role', value: r => (r.isSystemRole ? 'yes' : 'no') }
    ]
  },
  {
    section: 'admin/git',
    title: 'Git endpoints',
    path: 'admin/git/endpoints',
    columns: [
      { label: 'ID', value: r => text(r.id) },
      { label: 'Name', value: r => text(r.name) },
      { label: 'Repository URL', value: r => text(r.repositoryUrl) }
    ],
    fields: GIT_FIELDS,
    editable: true,
    removable: true,
    toBody: plainBody(GIT_FIELDS)
  },
  {
    section: 'admin/registries',
    title: 'Registry endpoints',
    path: 'admin/registry/endpoints',
    columns: [
      { label: 'ID', value: r => text(r.id) },
      { label: 'Name', value: r => text(r.name) },
      { label: 'Host', value: r => `${text(r.host)}${r.portNo ? ':' + text(r.portNo) : ''}` }
    ],
    fields: REGISTRY_FIELDS,
    editable: true,
    removable: true,
    toBody: plainBody(REGISTRY_FIELDS)
  },
  {
    section: 'admin/storage',
    title: 'Storage endpoints',
    path: 'admin/storage/endpoints',
    columns: [
      { label: 'ID', value: r => text(r.id) },
      { label: 'Name', value: r => text(r.name) },
      { label: 'Server', value: r => text(r.serverUrl) },
      { label: 'Root', value: r => text(r.nfsRoot) }
    ],
    fields: STORAGE_FIELDS,
    editable: true,
    removable: true,
    toBody: plainBody(STORAGE_FIELDS)
  },
  {
    section: 'admin/nodes',
    title: 'Nodes',
    path: 'admin/nodes',
    columns: [
      { label: 'Name', value: r => text(r.name) },
      { label: 'Partition', value: r => text(r.partition) },
      { label: 'Access', value: r => text(r.accessLevelStr) },
      { label: 'CPU', value: r => text(r.cpu) },
      { label: 'Memory', value: r => text(r.memory) },
      { label: 'GPU', value: r => text(r.gpu) }
    ],
    fields: NODE_FIELDS,
    editable: true,
    removable: true,
    toBody: plainBody(NODE_FIELDS),
    fromItem: item => ({
      ...item,
      assignedTenantIds: ((item.assignedTenants as Values[] | undefined) ?? []).map(t => Number(t.id))
    })
  },
  {
    section: 'admin/quotas',
    title: 'Quotas (0 is unlimited)',
    path: 'admin/quotas',
    rowKey: 'tenantId',
    columns: [
      { label: 'Tenant', value: r => text(r.tenantName) },
      { label: 'CPU', value: r => text(r.cpu) },
      { label: 'Memory (GiB)', value: r => text(r.memory) },
      { label: 'GPU', value: r => text(r.gpu) }
    ]
  }
];

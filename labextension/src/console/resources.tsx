/**
 * What runs where: nodes (capacity, what is assigned), tenants (usage; admins
 * only) and the containers holding resources — every running or admitted
 * training, inference, preprocessing and notebook — with its log and a stop
 * (after a confirmation). System admins see the whole platform
 * (`/admin/resource/…`), members their tenant (`/tenant/resource/…`).
 */
import * as React from 'react';

import { ErrorBanner, useErrors } from '../components';
import { requestAPI, requestRaw } from '../handler';
import { host } from '../host';

interface INodeResource {
  name: string;
  partition?: string | null;
  allocatableCpu: number;
  allocatableMemory: number;
  allocatableGpu: number;
  assignedCpu: number;
  assignedMemory: number;
  assignedGpu: number;
  containerResourceList?: unknown[];
}

interface ITenantResource extends INodeResource {
  id: number;
  displayName?: string;
}

interface IContainer {
  name: string;
  /** added: the run's own name (the contract's displayName is the tenant's) */
  runName?: string;
  tenantId?: number;
  tenantName?: string;
  containerType?: number | string;
  status: string;
  nodeName?: string | null;
  cpu: number;
  memory: number;
  gpu: number;
  createdBy?: string;
}

/** How often the screen asks again. */
const REFRESH_MS = 3000;

const used = (assigned: number, of: number) => `${assigned} / ${of || '∞'}`;

export function ResourceScreen(props: { scope: 'admin' | 'tenant' }): JSX.Element {
  const base = `${props.scope}/resource`;
  const [nodes, setNodes] = React.useState<INodeResource[]>([]);
  const [tenants, setTenants] = React.useState<ITenantResource[]>([]);
  const [containers, setContainers] = React.useState<IContainer[]>([]);
  const [log, setLog] = React.useState<{ name: string; text: string } | null>(null);
  const [error, setError, clearError] = useErrors();
  const [reload, setReload] = React.useState(0);
  React.useEffect(() => {
    const timer = setInterval(() => setReload(r => r + 1), REFRESH_MS); // runs start and end meanwhile
    return () => clearInterval(timer);
  }, []);
  React.useEffect(() => {
    requestAPI<INodeResource[]>(`${base}/nodes`).then(setNodes, setError);
    requestAPI<IContainer[]>(`${base}/containers`).then(setContainers, setError);
    if (props.scope === 'admin') {
      requestAPI<ITenantResource[]>(`${base}/tenants`).then(setTenants, setError);
    }
  }, [reload, props.scope]);
  const pathOf = (c: IContainer) =>
    `${base}/containers/` + (props.scope === 'admin' ? `${c.tenantId}/` : '') + encodeURIComponent(c.name);
  const showLog = async (c: IContainer) => {
    try {
      const response = await requestRaw(host().apiUrl(`${pathOf(c)}/log`));
      setLog({ name: c.runName || c.name, text: await response.text() });
    } catch (e) {
      setError(e);
    }
  };
  const stop = async (c: IContainer) => {
    if (!window.confirm(`Stop ${c.runName || c.name}? Its run ends as Killed.`)) {
      return;
    }
    try {
      await requestAPI(pathOf(c), { method: 'DELETE' });
      setReload(r => r + 1);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="kqi-resources">
      <div className="kqi-toolbar">
        <h2>Resources{props.scope === 'tenant' ? ' of this tenant' : ''}</h2>
        <button className="jp-mod-styled" onClick={() => setReload(r => r + 1)}>
          Reload
        </button>
      </div>
      <ErrorBanner error={error} onClose={clearError} />
      <h3>Nodes</h3>
      <table className="kqi-table kqi-resource-nodes">
        <thead>
          <tr>
            <th>Node</th>
            <th>Partition</th>
            <th>CPU used / of</th>
            <th>Memory (GB)</th>
            <th>GPU</th>
            <th>Containers</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map(n => (
            <tr key={n.name}>
              <td>{n.name}</td>
              <td>{n.partition ?? ''}</td>
              <td>{used(n.assignedCpu, n.allocatableCpu)}</td>
              <td>{used(n.assignedMemory, n.allocatableMemory)}</td>
              <td>{used(n.assignedGpu, n.allocatableGpu)}</td>
              <td>{n.containerResourceList?.length ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.scope === 'admin' ? (
        <>
          <h3>Tenants (used / quota)</h3>
          <table className="kqi-table kqi-resource-tenants">
            <thead>
              <tr>
                <th>Tenant</th>
                <th>CPU</th>
                <th>Memory (GB)</th>
                <th>GPU</th>
                <th>Containers</th>
              </tr>
            </thead>
            <tbody>
              {tenants.map(t => (
                <tr key={t.id}>
                  <td>{t.displayName || t.name}</td>
                  <td>{used(t.assignedCpu, t.allocatableCpu)}</td>
                  <td>{used(t.assignedMemory, t.allocatableMemory)}</td>
                  <td>{used(t.assignedGpu, t.allocatableGpu)}</td>
                  <td>{t.containerResourceList?.length ?? 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      <h3>Containers</h3>
      <table className="kqi-table kqi-resource-containers">
        <thead>
          <tr>
            <th>Name</th>
            {props.scope === 'admin' ? <th>Tenant</th> : null}
            <th>Status</th>
            <th>Node</th>
            <th>CPU / memory / GPU</th>
            <th>By</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {containers.map(c => (
            <tr key={`${c.tenantId ?? ''}/${c.name}`} className="kqi-container-row">
              <td>{c.runName || c.name}</td>
              {props.scope === 'admin' ? <td>{c.tenantName ?? c.tenantId}</td> : null}
              <td>{c.status}</td>
              <td>{c.nodeName ?? ''}</td>
              <td>
                {c.cpu} / {c.memory} / {c.gpu}
              </td>
              <td>{c.createdBy ?? ''}</td>
              <td className="kqi-admin-actions">
                <button className="jp-mod-styled kqi-container-log" onClick={() => showLog(c)}>
                  Log
                </button>
                <button className="jp-mod-styled jp-mod-warn kqi-container-stop" onClick={() => stop(c)}>
                  Stop
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {log ? (
        <div className="kqi-log">
          <div className="kqi-log-state">
            Log of {log.name}{' '}
            <button className="jp-mod-styled" onClick={() => setLog(null)}>
              Close
            </button>
          </div>
          <pre className="kqi-log-text">{log.text}</pre>
        </div>
      ) : null}
    </div>
  );
}

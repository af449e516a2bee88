/**
 * A tenant manager's screen: the selected tenant's members and their roles
 * (`/tenant/users`, `/tenant/roles`): give or take the manager role, remove a
 * member from the tenant. The API refuses non-managers; the console shows the
 * screen to managers and system admins only.
 */
import * as React from 'react';

import { ErrorBanner, SavedNote, useErrors } from '../components';
import { jsonBody, requestAPI } from '../handler';
import { ROLE_MANAGER, ROLE_USER } from './adminspecs';

interface IMember {
  id: number;
  name: string;
  roles: { id: number; name: string; displayName?: string }[];
}

export function MembersScreen(props: { tenantName: string }): JSX.Element {
  const [members, setMembers] = React.useState<IMember[] | null>(null);
  const [error, setError, clearError] = useErrors();
  const [note, setNote] = React.useState('');
  const [reload, setReload] = React.useState(0);
  React.useEffect(() => {
    requestAPI<IMember[]>('tenant/users').then(setMembers, setError);
  }, [reload, props.tenantName]);
  const act = async (work: () => Promise<unknown>, done: string) => {
    try {
      await work();
      clearError();
      setNote(done);
      setReload(r => r + 1);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="kqi-members">
      <div className="kqi-toolbar">
        <h2>Members of {props.tenantName}</h2>
      </div>
      <ErrorBanner error={error} onClose={clearError} />
      <SavedNote text={note} />
      <table className="kqi-table">
        <thead>
          <tr>
            <th>ID</th>
            <th>Name</th>
            <th>Roles</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {(members ?? []).map(m => {
            const manager = m.roles.some(r => r.id === ROLE_MANAGER);
            return (
              <tr key={m.id} className="kqi-member-row">
                <td>{m.id}</td>
                <td>{m.name}</td>
                <td>{m.roles.map(r => r.displayName || r.name).join(', ')}</td>
                <td className="kqi-admin-actions">
                  <button
                    className="jp-mod-styled kqi-toggle-manager"
                    onClick={() =>
                      act(
                        () =>
                          requestAPI(
                            `tenant/users/${m.id}/roles`,
                            jsonBody('PUT', manager ? [ROLE_USER] : [ROLE_USER, ROLE_MANAGER])
                          ),
                        `${m.name} ${manager ? 'no longer manages' : 'now manages'} ${props.tenantName}`
                      )
                    }
                  >
                    {manager ? 'Take manager role' : 'Make manager'}
                  </button>
                  <button
                    className="jp-mod-styled jp-mod-warn kqi-remove-member"
                    onClick={() => {
                      if (window.confirm(`Remove ${m.name} from ${props.tenantName}?`)) {
                        act(() => requestAPI(`tenant/users/${m.id}`, { method: 'DELETE' }), `${m.name} removed`);
                      }
                    }}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

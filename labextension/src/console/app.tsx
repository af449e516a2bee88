/**
 * The KQI console: the whole platform in a browser tab, without a notebook.
 *
 * A full-width page with the guide's menu (Data, Preprocessing, Datasets,
 * Trainings, Inference, Notebooks; Settings; Admin for system admins) and the
 * tenant switcher and user menu at the top right. The resource screens are
 * the JupyterLab panels themselves (one set of screens, two hosts: see
 * `host.ts`); the URL names the screen and the selected row
 * (`/services/kqi/trainings/42`), so pages are bookmarked and shared, and the
 * browser's back button moves between them.
 */
import * as React from 'react';

import { ErrorBanner, TenantSwitcher, useErrors } from '../components';
import { IOpenRequest, KqiModel } from '../model';
import { DataPanel } from '../panels/data';
import { DatasetsPanel } from '../panels/datasets';
import { InferencePanel } from '../panels/inference';
import { NotebooksPanel } from '../panels/notebooks';
import { PreprocessingPanel } from '../panels/preprocessing';
import { IRunActions } from '../panels/runs';
import { TrainingsPanel } from '../panels/trainings';
import { IAccount } from '../types';
import { RunKind } from '../urls';
import { AdminScreen } from './admin';
import { ROLE_MANAGER } from './adminspecs';
import { MembersScreen } from './members';
import { ResourceScreen } from './resources';
import {
  ADMIN_SECTIONS,
  IRoute,
  MEMBERS_SECTION,
  pathOf,
  RESOURCE_SECTIONS,
  RESOURCES_SECTION,
  routeOf,
  sectionOfPanel
} from './routes';
import { SettingsScreen } from './settings';
import { TerminalView } from './terminal';

export interface IConsoleProps {
  /** The service's base path, e.g. `/services/kqi/`. */
  base: string;
  /** The hub's base path, e.g. `/hub/`. */
  hubBase: string;
  model: KqiModel;
}

/** The current route, following the browser's history (and our own pushes). */
function useRoute(base: string): [IRoute, (route: IRoute, replace?: boolean) => void] {
  const [route, setRoute] = React.useState<IRoute>(() => routeOf(window.location.pathname, base));
  React.useEffect(() => {
    const popped = () => setRoute(routeOf(window.location.pathname, base));
    window.addEventListener('popstate', popped);
    return () => window.removeEventListener('popstate', popped);
  }, [base]);
  const go = (next: IRoute, replace = false) => {
    const path = pathOf(next, base);
    if (path !== window.location.pathname) {
      window.history[replace ? 'replaceState' : 'pushState'](null, '', path);
    }
    setRoute(next);
  };
  return [route, go];
}

export function ConsoleApp(props: IConsoleProps): JSX.Element {
  const { model, base } = props;
  const [route, go] = useRoute(base);
  const [account, setAccount] = React.useState<IAccount | null>(model.account);
  const [error, setError, clearError] = useErrors();
  const [shell, setShell] = React.useState<{ kind: RunKind; id: number } | null>(null);
  React.useEffect(() => {
    const changed = (_: KqiModel, a: IAccount | null) => setAccount(a);
    model.changed.connect(changed);
    model.load().catch(setError);
    // a selected row goes into the URL (replacing, not stacking, the history of clicks in one list)
    const selected = (_: KqiModel, s: { panel: string; id: number | null }) => {
      const section = sectionOfPanel(s.panel);
      if (section) {
        go({ section, id: s.id }, true);
      }
    };
    model.selected.connect(selected);
    // a screen asked for another (run inference on this training, show that data): go there
    const requested = (_: KqiModel, request: IOpenRequest) => {
      const section = sectionOfPanel(request.panel);
      if (section) {
        go({ section, id: request.show ?? null });
      }
    };
    model.openRequested.connect(requested);
    return () => {
      model.changed.disconnect(changed);
      model.selected.disconnect(selected);
      model.openRequested.disconnect(requested);
    };
  }, [model]);
  const resource = RESOURCE_SECTIONS.find(s => s.section === route.section);
  React.useEffect(() => {
    if (resource && route.id !== null) {
      model.open({ panel: resource.panel, show: route.id });
    }
  }, [route.section, route.id === null]);
  React.useEffect(() => {
    const label =
      resource?.label ??
      ADMIN_SECTIONS.find(s => s.section === route.section)?.label ??
      (route.section === 'settings' ? 'Settings' : '');
    document.title = `${label}${route.id !== null ? ` ${route.id}` : ''} – KQI Hub`;
  }, [route.section, route.id]);
  const actions: IRunActions = {
    openUrl: (url: string) => {
      window.open(url, '_blank', 'noopener');
    },
    openShell: (kind: RunKind, id: number) => setShell({ kind, id })
  };
  const link = (section: string, label: string) => (
    <a
      key={section}
      href={pathOf({ section, id: null }, base)}
      className={`kqi-console-menu-item${route.section === section ? ' kqi-console-current' : ''}`}
      aria-current={route.section === section ? 'page' : undefined}
      onClick={e => {
        if (!(e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0)) {
          e.preventDefault();
          go({ section, id: null });
        }
      }}
    >
      {label}
    </a>
  );
  const admin = !!account?.isSystemAdmin;
  const tenant = account?.selectedTenant ?? null;
  const manager = admin || !!tenant?.roles?.some(r => r.id === ROLE_MANAGER);
  return (
    <div className="kqi-console">
      <header className="kqi-console-header">
        <a className="kqi-console-brand" href={pathOf({ section: 'trainings', id: null }, base)}>
          KQI Hub
        </a>
        <nav className="kqi-console-menu" aria-label="KQI">
          {RESOURCE_SECTIONS.map(s => link(s.section, s.label))}
          {link(RESOURCES_SECTION, 'Resources')}
          {manager ? link(MEMBERS_SECTION, 'Members') : null}
          {link('settings', 'Settings')}
          {admin ? link('admin/tenants', 'Admin') : null}
        </nav>
        <div className="kqi-console-user">
          <TenantSwitcher model={model} onError={setError} />
          <a className="kqi-console-hub" href={`${props.hubBase}home`}>
            Notebook servers
          </a>
          <a className="kqi-console-logout" href={`${props.hubBase}logout`}>
            Log out
          </a>
        </div>
      </header>
      <ErrorBanner error={error} onClose={clearError} />
      {route.section.startsWith('admin/') ? (
        <nav className="kqi-console-submenu" aria-label="Admin">
          {ADMIN_SECTIONS.map(s => link(s.section, s.label))}
        </nav>
      ) : null}
      <main className={`kqi-console-main kqi-console-${route.section.replace('/', '-')}`}>
        {resource ? renderResource(resource.section, model, actions) : null}
        {route.section === 'settings' ? <SettingsScreen model={model} base={base} hubBase={props.hubBase} /> : null}
        {route.section === RESOURCES_SECTION ? <ResourceScreen scope="tenant" /> : null}
        {route.section === MEMBERS_SECTION ? (
          manager ? (
            <MembersScreen tenantName={tenant?.name ?? ''} />
          ) : (
            <div className="kqi-error">Only the tenant's managers see this screen.</div>
          )
        ) : null}
        {route.section.startsWith('admin/') ? (
          admin ? (
            <AdminScreen section={route.section} />
          ) : (
            <div className="kqi-error">Only system admins see this screen.</div>
          )
        ) : null}
      </main>
      {shell ? (
        <div className="kqi-console-overlay" role="dialog" aria-label={`Shell into ${shell.kind} ${shell.id}`}>
          <button className="jp-mod-styled kqi-console-close" onClick={() => setShell(null)}>
            Close shell
          </button>
          <TerminalView kind={shell.kind} id={shell.id} />
        </div>
      ) : null}
    </div>
  );
}

function renderResource(section: string, model: KqiModel, actions: IRunActions): JSX.Element | null {
  switch (section) {
    case 'data':
      return <DataPanel model={model} />;
    case 'datasets':
      return <DatasetsPanel model={model} />;
    case 'preprocessing':
      return <PreprocessingPanel model={model} />;
    case 'trainings':
      return <TrainingsPanel model={model} actions={actions} />;
    case 'inference':
      return <InferencePanel model={model} actions={actions} />;
    case 'notebooks':
      return <NotebooksPanel model={model} openUrl={actions.openUrl} />;
    default:
      return null;
  }
}

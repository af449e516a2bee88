/**
 * KQI Hub panels for JupyterLab: Data, Datasets, Preprocessing, Trainings,
 * Inference and Notebooks in the left sidebar, each with the tenant
 * switcher; a run's shell opens in the main area, and a panel asked to show
 * something by another (`KqiModel.open`) comes forward. Everything goes
 * through the server extension under `kqi/` (`labhost.ts`); the same screens
 * run in the KQI console (`console/`).
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { setHost } from './host';
import { labHost } from './labhost';
import { KqiModel } from './model';
import { DataPanel } from './panels/data';
import { DatasetsPanel } from './panels/datasets';
import { InferencePanel } from './panels/inference';
import { NotebooksPanel } from './panels/notebooks';
import { PreprocessingPanel } from './panels/preprocessing';
import { IRunActions } from './panels/runs';
import { ShellView } from './panels/runview';
import { TrainingsPanel } from './panels/trainings';
import { RunKind } from './urls';

function icon(name: string, letter: string): LabIcon {
  return new LabIcon({
    name: `kqi-hub:${name}`,
    svgstr:
      '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
      '<rect x="2" y="2" width="20" height="20" rx="4" fill-opacity="0.25"/>' +
      `<text x="12" y="17" font-size="13" font-family="sans-serif" text-anchor="middle">${letter}</text></g></svg>`
  });
}

function panel(id: string, label: string, letter: string, rank: number, body: JSX.Element, app: JupyterFrontEnd): void {
  const widget = ReactWidget.create(body);
  widget.id = `kqi-${id}`;
  widget.addClass('kqi-sidebar');
  widget.title.icon = icon(id, letter);
  widget.title.caption = `KQI ${label}`;
  app.shell.add(widget, 'left', { rank });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kqi-hub:panels',
  description: 'KQI Hub panels: data, datasets, preprocessing, trainings, inference, notebooks and the tenant switcher',
  autoStart: true,
  optional: [ILabShell],
  activate: (app: JupyterFrontEnd) => {
    setHost(labHost());
    const model = new KqiModel();
    const actions: IRunActions = {
      openUrl: (url: string) => {
        window.open(url, '_blank', 'noopener');
      },
      openShell: (kind: RunKind, id: number) => {
        const content = ReactWidget.create(<ShellView kind={kind} id={id} />);
        const widget = new MainAreaWidget({ content });
        widget.id = `kqi-shell-${kind}-${id}-${Date.now()}`;
        widget.title.label = `Shell: ${kind} ${id}`;
        widget.title.closable = true;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
      }
    };
    panel('data', 'Data', 'D', 600, <DataPanel model={model} />, app);
    panel('datasets', 'Datasets', 'S', 601, <DatasetsPanel model={model} />, app);
    panel('preprocessing', 'Preprocessing', 'P', 602, <PreprocessingPanel model={model} />, app);
    panel('trainings', 'Trainings', 'T', 603, <TrainingsPanel model={model} actions={actions} />, app);
    panel('inference', 'Inference', 'I', 604, <InferencePanel model={model} actions={actions} />, app);
    panel('notebooks', 'Notebooks', 'N', 605, <NotebooksPanel model={model} openUrl={actions.openUrl} />, app);
    model.openRequested.connect((_, request) => app.shell.activateById(`kqi-${request.panel}`));
  }
};

export default plugin;

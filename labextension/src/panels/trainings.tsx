/**
 * The Trainings panel: the runs panel of trainings (list with filters, the
 * submit form with "copy from", details with the live log, output files,
 * TensorBoard, shell, halt, lineage and "Run inference").
 */
import * as React from 'react';

import { KqiModel } from '../model';
import { IRunActions, RunsPanel, TRAINING_SPEC } from './runs';

export { IRunActions } from './runs';

export function TrainingsPanel(props: { model: KqiModel; actions: IRunActions }): JSX.Element {
  return <RunsPanel spec={TRAINING_SPEC} model={props.model} actions={props.actions} />;
}

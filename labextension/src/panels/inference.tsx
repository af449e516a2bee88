/**
 * The Inference panel: the runs panel of inferences, with their output value
 * in the list and details, and parent trainings and inferences in the form.
 */
import * as React from 'react';

import { KqiModel } from '../model';
import { INFERENCE_SPEC, IRunActions, RunsPanel } from './runs';

export function InferencePanel(props: { model: KqiModel; actions: IRunActions }): JSX.Element {
  return <RunsPanel spec={INFERENCE_SPEC} model={props.model} actions={props.actions} />;
}

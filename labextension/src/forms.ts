/**
 * What the panels' forms send: their fields (strings, as typed) to the API's
 * request bodies and back. Pure functions, unit-tested on their own.
 */
import { IInferenceDetails, INotebookDetails, IPreprocessingDetails, ITrainingDetails } from './types';

/** A JSON request's init: its method and, if any, its body. */
export function jsonBody(method: string, body?: unknown): RequestInit {
  return body === undefined ? { method } : { method, body: JSON.stringify(body) };
}

/** "a, b,,c " → ["a", "b", "c"]: a comma-separated field's items. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map(t => t.trim())
    .filter(Boolean);
}

/**
 * The run form of trainings and inferences: its fields, as typed (strings,
 * but for the zip checkbox). `parentIds` are trainings, `inferenceIds`
 * parent inferences (an inference's only), both comma separated.
 */
export interface IRunForm {
  name: string;
  parentIds: string;
  inferenceIds: string;
  dataSetId: string;
  registryId: string;
  image: string;
  tag: string;
  gitId: string;
  owner: string;
  repository: string;
  branch: string;
  commitId: string;
  entryPoint: string;
  cpu: string;
  memory: string;
  gpu: string;
  options: string;
  zip: boolean;
  partition: string;
  memo: string;
}

/** A blank run form. */
export const EMPTY_RUN_FORM: IRunForm = {
  name: '',
  parentIds: '',
  inferenceIds: '',
  dataSetId: '',
  registryId: '',
  image: '',
  tag: '',
  gitId: '',
  owner: '',
  repository: '',
  branch: '',
  commitId: '',
  entryPoint: '',
  cpu: '1',
  memory: '1',
  gpu: '0',
  options: '',
  zip: true,
  partition: '',
  memo: ''
};

/**
 * The form prefilled from an existing training or inference ("copy from"):
 * its fields, but the commit is left blank.
 */
export function runFormOf(t: ITrainingDetails | IInferenceDetails): IRunForm {
  return {
    ...EMPTY_RUN_FORM,
    name: t.name,
    parentIds: (t.parents ?? []).map(p => p.id).join(','),
    inferenceIds: ('parentInferences' in t ? (t.parentInferences ?? []) : []).map(p => p.id).join(','),
    dataSetId: t.dataSet ? String(t.dataSet.id) : '',
    registryId: t.containerImage?.registryId ? String(t.containerImage.registryId) : '',
    image: t.containerImage?.image ?? '',
    tag: t.containerImage?.tag ?? '',
    gitId: String(t.gitModel?.gitId ?? ''),
    owner: t.gitModel?.owner ?? '',
    repository: t.gitModel?.repository ?? '',
    branch: t.gitModel?.branch ?? '',
    entryPoint: t.entryPoint ?? '',
    cpu: String(t.cpu),
    memory: String(t.memory),
    gpu: String(t.gpu),
    options: (t.options ?? []).map(o => `${o.key}=${o.value}`).join('\n'),
    zip: t.zip,
    partition: t.partition ?? '',
    memo: t.memo ?? ''
  };
}

/**
 * The inference form a training's "Run inference" opens: the training is its
 * parent, and its image, model, dataset, resources and command are the defaults.
 */
export function inferenceFormOf(t: ITrainingDetails): IRunForm {
  const copied = runFormOf(t);
  return {
    ...EMPTY_RUN_FORM,
    name: t.name,
    parentIds: String(t.id),
    dataSetId: copied.dataSetId,
    registryId: copied.registryId,
    image: copied.image,
    tag: copied.tag,
    gitId: copied.gitId,
    owner: copied.owner,
    repository: copied.repository,
    branch: copied.branch,
    commitId: t.gitModel?.commitId ?? '',
    entryPoint: copied.entryPoint,
    cpu: copied.cpu,
    memory: copied.memory,
    gpu: copied.gpu
  };
}

/** A blank number field is null, any other its number. */
function numberOrNull(text: string): number | null {
  return text.trim() === '' ? null : Number(text);
}

/** `KEY=value` lines as environment options: blank lines and lines without a key are left out. */
export function optionsOf(text: string): Record<string, string> {
  const options: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (line.trim() && at > 0) {
      options[line.slice(0, at).trim()] = line.slice(at + 1);
    }
  }
  return options;
}

/** Comma-separated IDs as numbers. */
function idsOf(text: string): number[] {
  return splitList(text).map(Number);
}

/**
 * The `POST /training/run` (or `/inferences/run`) body of the form: numbers
 * parsed (a blank one is null), text trimmed, parent IDs split on commas, one
 * `KEY=value` option a line; an inference's adds its parent inferences.
 */
export function runBodyOf(kind: 'training' | 'inference', f: IRunForm): Record<string, unknown> {
  const num = numberOrNull;
  const options = optionsOf(f.options);
  return {
    name: f.name.trim(),
    parentIds: idsOf(f.parentIds),
    ...(kind === 'inference' ? { inferenceIds: idsOf(f.inferenceIds) } : {}),
    dataSetId: num(f.dataSetId),
    containerImage: { registryId: num(f.registryId), image: f.image.trim(), tag: f.tag.trim() },
    gitModel: {
      gitId: num(f.gitId),
      owner: f.owner.trim(),
      repository: f.repository.trim(),
      branch: f.branch.trim() || null,
      commitId: f.commitId.trim() || null
    },
    entryPoint: f.entryPoint,
    cpu: num(f.cpu),
    memory: num(f.memory),
    gpu: num(f.gpu),
    options,
    zip: f.zip,
    partition: f.partition.trim() || null,
    memo: f.memo
  };
}

/** The New notebook form's fields, as typed. */
export interface INotebookForm {
  name: string;
  dataSetId: string;
  image: string;
  tag: string;
  cpu: string;
  memory: string;
  gpu: string;
  hours: string;
  memo: string;
}

/** A blank New notebook form: 1 CPU, 1 GB, no GPU, 8 hours. */
export const EMPTY_NOTEBOOK_FORM: INotebookForm = {
  name: '',
  dataSetId: '',
  image: '',
  tag: '',
  cpu: '1',
  memory: '1',
  gpu: '0',
  hours: '8',
  memo: ''
};

/** The Rerun form's fields, as typed. */
export interface IRerunForm {
  cpu: string;
  memory: string;
  gpu: string;
  hours: string;
  dataSetId: string;
  partition: string;
}

/** A lifetime typed in hours, in whole seconds (`expiresIn`). */
export function lifetimeSeconds(hours: string): number {
  return Math.round(Number(hours) * 3600);
}

/** The `POST /notebook/run` body of the form; no image typed means the default image. */
export function notebookRunBody(f: INotebookForm): Record<string, unknown> {
  return {
    name: f.name.trim(),
    dataSetId: f.dataSetId ? Number(f.dataSetId) : null,
    containerImage: f.image.trim() ? { image: f.image.trim(), tag: f.tag.trim() } : null,
    cpu: Number(f.cpu),
    memory: Number(f.memory),
    gpu: Number(f.gpu),
    expiresIn: lifetimeSeconds(f.hours),
    memo: f.memo
  };
}

/** The Rerun form prefilled from the notebook; a notebook without a lifetime is offered 8 hours. */
export function rerunFormOf(nb: INotebookDetails): IRerunForm {
  return {
    cpu: String(nb.cpu),
    memory: String(nb.memory),
    gpu: String(nb.gpu),
    hours: nb.expiresIn === null || nb.expiresIn === undefined ? '8' : String(nb.expiresIn / 3600),
    dataSetId: nb.dataSet ? String(nb.dataSet.id) : '',
    partition: nb.partition ?? ''
  };
}

/** The `POST /notebook/{id}/rerun` body of the form. */
export function notebookRerunBody(f: IRerunForm): Record<string, unknown> {
  return {
    cpu: Number(f.cpu),
    memory: Number(f.memory),
    gpu: Number(f.gpu),
    expiresIn: lifetimeSeconds(f.hours),
    dataSetId: f.dataSetId ? Number(f.dataSetId) : null,
    partition: f.partition.trim() || null
  };
}

/** The preprocessing define/edit form's fields, as typed; all but the name may stay blank. */
export interface IPreprocessingForm {
  name: string;
  entryPoint: string;
  registryId: string;
  image: string;
  tag: string;
  gitId: string;
  owner: string;
  repository: string;
  branch: string;
  commitId: string;
  cpu: string;
  memory: string;
  gpu: string;
  memo: string;
}

/** A blank define form. */
export const EMPTY_PREPROCESSING_FORM: IPreprocessingForm = {
  name: '',
  entryPoint: '',
  registryId: '',
  image: '',
  tag: '',
  gitId: '',
  owner: '',
  repository: '',
  branch: '',
  commitId: '',
  cpu: '',
  memory: '',
  gpu: '',
  memo: ''
};

/** The edit form of a preprocessing: its fields as they are. */
export function preprocessingFormOf(p: IPreprocessingDetails): IPreprocessingForm {
  const text = (v: string | number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  return {
    name: p.name,
    entryPoint: text(p.entryPoint),
    registryId: text(p.containerImage?.registryId),
    image: text(p.containerImage?.image),
    tag: text(p.containerImage?.tag),
    gitId: text(p.gitModel?.gitId),
    owner: text(p.gitModel?.owner),
    repository: text(p.gitModel?.repository),
    branch: text(p.gitModel?.branch),
    commitId: text(p.gitModel?.commitId),
    cpu: text(p.cpu),
    memory: text(p.memory),
    gpu: text(p.gpu),
    memo: text(p.memo)
  };
}

/**
 * The `POST /preprocessings` (and `PUT /{id}`) body of the form: no image typed
 * means no image, no repository typed no git model, a blank number null.
 */
export function preprocessingBodyOf(f: IPreprocessingForm): Record<string, unknown> {
  return {
    name: f.name.trim(),
    entryPoint: f.entryPoint.trim() ? f.entryPoint : null,
    containerImage: f.image.trim()
      ? { registryId: numberOrNull(f.registryId), image: f.image.trim(), tag: f.tag.trim() }
      : null,
    gitModel: f.repository.trim()
      ? {
          gitId: numberOrNull(f.gitId),
          owner: f.owner.trim(),
          repository: f.repository.trim(),
          branch: f.branch.trim() || null,
          commitId: f.commitId.trim() || null
        }
      : null,
    memo: f.memo,
    cpu: numberOrNull(f.cpu),
    memory: numberOrNull(f.memory),
    gpu: numberOrNull(f.gpu)
  };
}

/** The `PATCH /preprocessings/{id}` body: what a preprocessing with histories may still change. */
export function preprocessingPatchOf(f: IPreprocessingForm): Record<string, unknown> {
  const body = preprocessingBodyOf(f);
  return { name: body.name, memo: body.memo, cpu: body.cpu, memory: body.memory, gpu: body.gpu };
}

/** The run form of a preprocessing: resources (blank: the definition's), environment, partition. */
export interface IPreprocessingRunForm {
  cpu: string;
  memory: string;
  gpu: string;
  options: string;
  partition: string;
}

export const EMPTY_PREPROCESSING_RUN_FORM: IPreprocessingRunForm = {
  cpu: '',
  memory: '',
  gpu: '',
  options: '',
  partition: ''
};

/**
 * The `POST /preprocessings/{id}/run` body: one history per data of `dataIds`.
 * A blank resource or partition is left out, so the definition's applies.
 */
export function preprocessingRunBody(dataIds: number[], f: IPreprocessingRunForm): Record<string, unknown> {
  const body: Record<string, unknown> = { dataIds, options: optionsOf(f.options) };
  for (const key of ['cpu', 'memory', 'gpu'] as const) {
    if (f[key].trim() !== '') {
      body[key] = Number(f[key]);
    }
  }
  if (f.partition.trim()) {
    body.partition = f.partition.trim();
  }
  return body;
}

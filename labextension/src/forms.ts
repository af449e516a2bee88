/**
 * What the panels' forms send: their fields (strings, as typed) to the API's
 * request bodies and back. Pure functions, unit-tested on their own.
 */
import { INotebookDetails, ITrainingDetails } from './types';

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

/** The New training form's fields, as typed (strings, but for the zip checkbox). */
export interface ITrainingForm {
  name: string;
  parentIds: string;
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

/** A blank New training form. */
export const EMPTY_TRAINING_FORM: ITrainingForm = {
  name: '',
  parentIds: '',
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
 * The form prefilled from an existing training ("copy from"): its fields, but
 * the commit is left blank.
 */
export function trainingFormOf(t: ITrainingDetails): ITrainingForm {
  return {
    ...EMPTY_TRAINING_FORM,
    name: t.name,
    parentIds: (t.parents ?? []).map(p => p.id).join(','),
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
 * The `POST /training/run` body of the form: numbers parsed (a blank one is
 * null), text trimmed, parent IDs split on commas, one `KEY=value` option a line.
 */
export function trainingBodyOf(f: ITrainingForm): Record<string, unknown> {
  const num = (s: string) => (s.trim() === '' ? null : Number(s));
  const options: Record<string, string> = {};
  for (const line of f.options.split('\n')) {
    const at = line.indexOf('=');
    if (line.trim() && at > 0) {
      options[line.slice(0, at).trim()] = line.slice(at + 1);
    }
  }
  return {
    name: f.name.trim(),
    parentIds: splitList(f.parentIds).map(Number),
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

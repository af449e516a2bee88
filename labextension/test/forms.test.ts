import {
  EMPTY_NOTEBOOK_FORM,
  EMPTY_PREPROCESSING_FORM,
  EMPTY_PREPROCESSING_RUN_FORM,
  EMPTY_RUN_FORM,
  inferenceFormOf,
  jsonBody,
  lifetimeSeconds,
  notebookRerunBody,
  notebookRunBody,
  optionsOf,
  preprocessingBodyOf,
  preprocessingFormOf,
  preprocessingPatchOf,
  preprocessingRunBody,
  rerunFormOf,
  runBodyOf,
  runFormOf,
  splitList
} from '../src/forms';
import { IInferenceDetails, INotebookDetails, IPreprocessingDetails, ITrainingDetails } from '../src/types';

describe('jsonBody', () => {
  it('is the method alone without a body', () => {
    expect(jsonBody('DELETE')).toEqual({ method: 'DELETE' });
  });
  it('serialises the body', () => {
    expect(jsonBody('PUT', { tenantId: 2 })).toEqual({ method: 'PUT', body: '{"tenantId":2}' });
    expect(jsonBody('PUT', {})).toEqual({ method: 'PUT', body: '{}' });
  });
});

describe('splitList', () => {
  it('trims and drops empty items', () => {
    expect(splitList(' a, b,,c ')).toEqual(['a', 'b', 'c']);
    expect(splitList('')).toEqual([]);
  });
});

const training: ITrainingDetails = {
  id: 7,
  name: 'resnet',
  status: 'Completed',
  memo: 'first try',
  entryPoint: 'python train.py',
  dataSet: { id: 3, name: 'mnist' },
  gitModel: { gitId: 1, owner: 'kqi', repository: 'demo', branch: 'main', commitId: 'abc123' },
  containerImage: { registryId: 2, image: 'python', tag: '3.11' },
  options: [
    { key: 'EPOCHS', value: '10' },
    { key: 'LR', value: '0.1' }
  ],
  cpu: 2,
  memory: 4,
  gpu: 1,
  partition: 'gpu',
  zip: false,
  parents: [
    { id: 4, name: 'a', status: 'Completed' },
    { id: 5, name: 'b', status: 'Completed' }
  ]
};

describe('the run form', () => {
  it('is prefilled from a training, leaving the commit blank', () => {
    expect(runFormOf(training)).toEqual({
      name: 'resnet',
      parentIds: '4,5',
      inferenceIds: '',
      dataSetId: '3',
      registryId: '2',
      image: 'python',
      tag: '3.11',
      gitId: '1',
      owner: 'kqi',
      repository: 'demo',
      branch: 'main',
      commitId: '',
      entryPoint: 'python train.py',
      cpu: '2',
      memory: '4',
      gpu: '1',
      options: 'EPOCHS=10\nLR=0.1',
      zip: false,
      partition: 'gpu',
      memo: 'first try'
    });
  });

  it('sends numbers, trimmed text and options by line', () => {
    const body = runBodyOf('training', {
      ...EMPTY_RUN_FORM,
      name: ' resnet ',
      parentIds: '4, 5,',
      dataSetId: '3',
      image: ' python ',
      tag: '3.11',
      gitId: '1',
      owner: 'kqi',
      repository: 'demo',
      branch: ' ',
      entryPoint: 'python train.py',
      gpu: '2',
      options: 'EPOCHS=10\n  \n=nokey\nnoequals\nURL = a=b',
      partition: ''
    });
    expect(body).toEqual({
      name: 'resnet',
      parentIds: [4, 5],
      dataSetId: 3,
      containerImage: { registryId: null, image: 'python', tag: '3.11' },
      gitModel: { gitId: 1, owner: 'kqi', repository: 'demo', branch: null, commitId: null },
      entryPoint: 'python train.py',
      cpu: 1,
      memory: 1,
      gpu: 2,
      options: { EPOCHS: '10', URL: ' a=b' },
      zip: true,
      partition: null,
      memo: ''
    });
  });

  it('copies an inference with its parent inferences', () => {
    const inference: IInferenceDetails = {
      ...training,
      id: 9,
      outputValue: '0.9',
      parentInferences: [{ id: 8, name: 'first', status: 'Completed' }]
    };
    expect(runFormOf(inference)).toMatchObject({ parentIds: '4,5', inferenceIds: '8' });
  });

  it("sends an inference's parent inferences, a training's never", () => {
    const form = { ...EMPTY_RUN_FORM, parentIds: '4', inferenceIds: '8, 9' };
    expect(runBodyOf('inference', form)).toMatchObject({ parentIds: [4], inferenceIds: [8, 9] });
    expect(runBodyOf('training', form)).not.toHaveProperty('inferenceIds');
  });

  it("opens an inference of a training with the training as parent and the training's settings", () => {
    expect(inferenceFormOf(training)).toEqual({
      ...EMPTY_RUN_FORM,
      name: 'resnet',
      parentIds: '7',
      dataSetId: '3',
      registryId: '2',
      image: 'python',
      tag: '3.11',
      gitId: '1',
      owner: 'kqi',
      repository: 'demo',
      branch: 'main',
      commitId: 'abc123',
      entryPoint: 'python train.py',
      cpu: '2',
      memory: '4',
      gpu: '1'
    });
  });
});

describe('optionsOf', () => {
  it('keeps KEY=value lines, the value as typed', () => {
    expect(optionsOf('A=1\n\n=x\nnone\n B = c=d')).toEqual({ A: '1', B: ' c=d' });
    expect(optionsOf('')).toEqual({});
  });
});

const preprocessing: IPreprocessingDetails = {
  id: 5,
  name: 'resize',
  memo: 'to 64px',
  entryPoint: 'python resize.py',
  containerImage: { registryId: 2, image: 'python', tag: '3.11' },
  gitModel: { gitId: 1, owner: 'kqi', repository: 'prep', branch: null, commitId: null },
  cpu: 2,
  memory: null,
  gpu: 0,
  isLocked: false,
  missingForRun: []
};

describe('the preprocessing forms', () => {
  it('define with the name alone: the rest null', () => {
    expect(preprocessingBodyOf({ ...EMPTY_PREPROCESSING_FORM, name: ' resize ' })).toEqual({
      name: 'resize',
      entryPoint: null,
      containerImage: null,
      gitModel: null,
      memo: '',
      cpu: null,
      memory: null,
      gpu: null
    });
  });

  it('round-trip a definition through the edit form', () => {
    const form = preprocessingFormOf(preprocessing);
    expect(form).toEqual({
      name: 'resize',
      entryPoint: 'python resize.py',
      registryId: '2',
      image: 'python',
      tag: '3.11',
      gitId: '1',
      owner: 'kqi',
      repository: 'prep',
      branch: '',
      commitId: '',
      cpu: '2',
      memory: '',
      gpu: '0',
      memo: 'to 64px'
    });
    expect(preprocessingBodyOf(form)).toEqual({
      name: 'resize',
      entryPoint: 'python resize.py',
      containerImage: { registryId: 2, image: 'python', tag: '3.11' },
      gitModel: { gitId: 1, owner: 'kqi', repository: 'prep', branch: null, commitId: null },
      memo: 'to 64px',
      cpu: 2,
      memory: null,
      gpu: 0
    });
    expect(preprocessingFormOf({ id: 6, name: 'bare' })).toEqual({ ...EMPTY_PREPROCESSING_FORM, name: 'bare' });
  });

  it('patch only what a definition with histories may change', () => {
    expect(preprocessingPatchOf({ ...preprocessingFormOf(preprocessing), name: 'resize2', image: 'other' })).toEqual({
      name: 'resize2',
      memo: 'to 64px',
      cpu: 2,
      memory: null,
      gpu: 0
    });
  });

  it('run on several data, blank resources left out for the definition to decide', () => {
    expect(
      preprocessingRunBody([3, 4], { ...EMPTY_PREPROCESSING_RUN_FORM, gpu: '1', options: 'K=v', partition: ' ' })
    ).toEqual({ dataIds: [3, 4], options: { K: 'v' }, gpu: 1 });
    expect(preprocessingRunBody([3], { cpu: '2', memory: '4', gpu: '0', options: '', partition: ' a100 ' })).toEqual({
      dataIds: [3],
      options: {},
      cpu: 2,
      memory: 4,
      gpu: 0,
      partition: 'a100'
    });
  });
});

const notebook: INotebookDetails = {
  id: 12,
  name: 'nb',
  status: 'Completed',
  cpu: 4,
  memory: 16,
  gpu: 0,
  expiresIn: 5400,
  dataSet: { id: 3, name: 'mnist' },
  partition: null
};

describe('the notebook forms', () => {
  it('turn hours into whole seconds', () => {
    expect(lifetimeSeconds('8')).toBe(28800);
    expect(lifetimeSeconds('1.5')).toBe(5400);
    expect(lifetimeSeconds('0.0001')).toBe(0);
  });

  it('send a new notebook, no image meaning the default', () => {
    expect(notebookRunBody({ ...EMPTY_NOTEBOOK_FORM, name: ' nb ', dataSetId: '3' })).toEqual({
      name: 'nb',
      dataSetId: 3,
      containerImage: null,
      cpu: 1,
      memory: 1,
      gpu: 0,
      expiresIn: 28800,
      memo: ''
    });
    expect(notebookRunBody({ ...EMPTY_NOTEBOOK_FORM, image: ' jupyter ', tag: ' 4 ' }).containerImage).toEqual({
      image: 'jupyter',
      tag: '4'
    });
  });

  it('prefill a rerun from the notebook', () => {
    expect(rerunFormOf(notebook)).toEqual({
      cpu: '4',
      memory: '16',
      gpu: '0',
      hours: '1.5',
      dataSetId: '3',
      partition: ''
    });
    expect(rerunFormOf({ ...notebook, expiresIn: null, dataSet: null }).hours).toBe('8');
  });

  it('send a rerun', () => {
    expect(notebookRerunBody({ ...rerunFormOf(notebook), gpu: '1', dataSetId: '', partition: ' a100 ' })).toEqual({
      cpu: 4,
      memory: 16,
      gpu: 1,
      expiresIn: 5400,
      dataSetId: null,
      partition: 'a100'
    });
  });
});

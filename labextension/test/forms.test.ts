import {
  EMPTY_NOTEBOOK_FORM,
  EMPTY_TRAINING_FORM,
  jsonBody,
  lifetimeSeconds,
  notebookRerunBody,
  notebookRunBody,
  rerunFormOf,
  splitList,
  trainingBodyOf,
  trainingFormOf
} from '../src/forms';
import { INotebookDetails, ITrainingDetails } from '../src/types';

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

describe('the training form', () => {
  it('is prefilled from a training, leaving the commit blank', () => {
    expect(trainingFormOf(training)).toEqual({
      name: 'resnet',
      parentIds: '4,5',
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
    const body = trainingBodyOf({
      ...EMPTY_TRAINING_FORM,
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

import { apiPath, parentDir, queryString, RUN_API_PATH, runPath } from '../src/urls';

describe('queryString', () => {
  it('is empty without set values', () => {
    expect(queryString()).toBe('');
    expect(queryString({})).toBe('');
    expect(queryString({ Name: '', tag: undefined, Status: null })).toBe('');
  });
  it('sends set values, encoded, in order', () => {
    expect(queryString({ Name: 'my data', tag: '', page: 2, perPage: 50 })).toBe('?Name=my+data&page=2&perPage=50');
    expect(queryString({ withUrl: true, offset: 0, path: '/a&b' })).toBe('?withUrl=true&offset=0&path=%2Fa%26b');
  });
});

describe('apiPath', () => {
  it('prefixes api/ with or without a leading slash', () => {
    expect(apiPath('data')).toBe('api/data');
    expect(apiPath('/training/3')).toBe('api/training/3');
  });
});

describe('parentDir', () => {
  it('goes one directory up, to the root at most', () => {
    expect(parentDir('/a/b/c')).toBe('/a/b');
    expect(parentDir('/a')).toBe('/');
    expect(parentDir('/')).toBeNull();
  });
});

describe('runPath', () => {
  it("is each kind's API path: inference's are inferences/…", () => {
    expect(runPath('training', 3)).toBe('training/3');
    expect(runPath('inference', 3, 'halt')).toBe('inferences/3/halt');
    expect(runPath('preprocessing', 9, 'container-files')).toBe('preprocessing/9/container-files');
    expect(RUN_API_PATH).toEqual({ training: 'training', inference: 'inferences', preprocessing: 'preprocessing' });
  });
});

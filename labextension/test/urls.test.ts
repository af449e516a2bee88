import { apiPath, parentDir, queryString } from '../src/urls';

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

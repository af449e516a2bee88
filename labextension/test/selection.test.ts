import { toggleMarked } from '../src/selection';

describe('toggleMarked', () => {
  it('marks a plainly clicked row alone', () => {
    expect(toggleMarked([1, 2], 3, false)).toEqual([3]);
    expect(toggleMarked([1, 2], 2, false)).toEqual([2]);
    expect(toggleMarked([], 1, false)).toEqual([1]);
  });
  it('adds or takes out a row clicked with a modifier, keeping the order', () => {
    expect(toggleMarked([1, 2], 3, true)).toEqual([1, 2, 3]);
    expect(toggleMarked([1, 2, 3], 2, true)).toEqual([1, 3]);
    expect(toggleMarked([1], 1, true)).toEqual([]);
  });
});

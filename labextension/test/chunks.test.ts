import {
  backoffMs,
  PART_SIZE,
  partCount,
  partErrorMessage,
  partETag,
  partRange,
  progressCounter,
  shouldRetry,
  workerCount
} from '../src/chunks';

const MiB = 1024 * 1024;

describe('parts of a file', () => {
  it('are 16 MiB', () => {
    expect(PART_SIZE).toBe(16 * MiB);
  });
  it('are as many as the size needs, the last one short', () => {
    expect(partCount(0)).toBe(0);
    expect(partCount(1)).toBe(1);
    expect(partCount(16 * MiB)).toBe(1);
    expect(partCount(16 * MiB + 1)).toBe(2);
    expect(partCount(100 * MiB)).toBe(7);
  });
  it('cover the file exactly', () => {
    const size = 40 * MiB + 5;
    expect(partRange(0, size)).toEqual([0, 16 * MiB]);
    expect(partRange(1, size)).toEqual([16 * MiB, 32 * MiB]);
    expect(partRange(2, size)).toEqual([32 * MiB, size]);
    expect(partRange(1, 10, 4)).toEqual([4, 8]);
  });
  it('go at most 8 at once', () => {
    expect(workerCount(1)).toBe(1);
    expect(workerCount(8)).toBe(8);
    expect(workerCount(700)).toBe(8);
  });
  it('are listed 1-based with their ETag', () => {
    expect(partETag(0, '"abc"')).toBe('1+"abc"');
    expect(partETag(6, 'f00')).toBe('7+f00');
  });
});

describe('retries of a failed part', () => {
  it('retry no answer and server errors three times', () => {
    expect(shouldRetry(0, 1)).toBe(true);
    expect(shouldRetry(503, 3)).toBe(true);
    expect(shouldRetry(503, 4)).toBe(false);
  });
  it('retry a timeout or rate limit, not other client errors', () => {
    expect(shouldRetry(408, 1)).toBe(true);
    expect(shouldRetry(429, 2)).toBe(true);
    expect(shouldRetry(403, 1)).toBe(false);
    expect(shouldRetry(404, 1)).toBe(false);
  });
  it('wait 500 ms, doubling', () => {
    expect([1, 2, 3].map(backoffMs)).toEqual([500, 1000, 2000]);
  });
});

describe('partErrorMessage', () => {
  it("uses the body's message", () => {
    expect(partErrorMessage(403, '{"message":"signature expired"}')).toBe('signature expired');
  });
  it('falls back to the status for other bodies', () => {
    expect(partErrorMessage(500, '<html>oops</html>')).toBe('part upload answered 500');
    expect(partErrorMessage(500, '{"message":""}')).toBe('part upload answered 500');
    expect(partErrorMessage(0, '')).toBe('part upload answered 0');
  });
});

describe('progressCounter', () => {
  it('adds up bytes and reports at most every 100 ms', () => {
    let clock = 1000;
    const shown: [number, number][] = [];
    const count = progressCounter(
      300,
      (done, total) => shown.push([done, total]),
      () => clock
    );
    count(100); // first report at once
    clock += 50;
    count(100); // too soon: counted, not shown
    clock += 50;
    count(50);
    clock += 10;
    count(-50); // a failed part takes its bytes back
    clock += 100;
    count(0);
    expect(shown).toEqual([
      [100, 300],
      [250, 300],
      [200, 300]
    ]);
  });
});

import {
  appendTail,
  closedState,
  entryRows,
  formatSeconds,
  formatSize,
  gitModelLabel,
  itemCount,
  lifetimeLabel,
  lifetimeOk,
  lockedLabel,
  missingLabel,
  optionalResource,
  percent,
  queueLabel,
  statusLabel,
  refLabel,
  remaining,
  resourcesLabel,
  stripAnsi,
  tenantLabel
} from '../src/format';

describe('formatSize', () => {
  it('shows bytes as a whole number', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1023)).toBe('1023 B');
  });
  it('shows larger sizes in binary units with one decimal', () => {
    expect(formatSize(1024)).toBe('1.0 KiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(16 * 1024 * 1024)).toBe('16.0 MiB');
    expect(formatSize(3 * 1024 ** 3)).toBe('3.0 GiB');
  });
  it('stops at TiB', () => {
    expect(formatSize(2048 * 1024 ** 4)).toBe('2048.0 TiB');
  });
});

describe('percent', () => {
  it('floors to a whole percent', () => {
    expect(percent(1, 3)).toBe(33);
    expect(percent(999, 1000)).toBe(99);
    expect(percent(1000, 1000)).toBe(100);
  });
  it('is 100 for an empty file', () => {
    expect(percent(0, 0)).toBe(100);
  });
});

describe('formatSeconds and remaining', () => {
  it('pads minutes and seconds but not hours', () => {
    expect(formatSeconds(2 * 3600 + 5 * 60 + 9)).toBe('2h 05m 09s');
    expect(formatSeconds(59.9)).toBe('0h 00m 59s');
    expect(formatSeconds(30 * 3600)).toBe('30h 00m 00s');
  });
  it('never goes below zero', () => {
    expect(formatSeconds(-5)).toBe('0h 00m 00s');
  });
  it('counts down from when the row arrived', () => {
    // 3600 s left when received at t=10 s; 61.5 s later
    expect(remaining(3600, 10_000, 71_500)).toBe('0h 58m 58s');
    expect(remaining(100, 0, 200_000)).toBe('0h 00m 00s');
  });
  it('is unlimited without a lifetime', () => {
    expect(remaining(null, 0, 1000)).toBe('unlimited');
    expect(remaining(undefined, 0, 1000)).toBe('unlimited');
  });
});

describe('lifetimeOk and lifetimeLabel', () => {
  it('accepts at least an hour', () => {
    expect(lifetimeOk('1', false)).toBe(true);
    expect(lifetimeOk('8.5', null)).toBe(true);
    expect(lifetimeOk('0.5', true)).toBe(false);
  });
  it('accepts 0 (unlimited) only where the tenant allows it', () => {
    expect(lifetimeOk('0', true)).toBe(true);
    expect(lifetimeOk('0', false)).toBe(false);
    expect(lifetimeOk('0', null)).toBe(false);
  });
  it('refuses blanks and non-numbers', () => {
    expect(lifetimeOk('', true)).toBe(false);
    expect(lifetimeOk('  ', true)).toBe(false);
    expect(lifetimeOk('abc', true)).toBe(false);
    expect(lifetimeOk('Infinity', true)).toBe(false);
  });
  it('says 0 = unlimited only where allowed', () => {
    expect(lifetimeLabel(true)).toBe('Lifetime (h, 0 = unlimited)');
    expect(lifetimeLabel(false)).toBe('Lifetime (h, at least 1)');
    expect(lifetimeLabel(null)).toBe('Lifetime (h, at least 1)');
  });
});

describe('labels', () => {
  it('counts list items', () => {
    expect(itemCount(null)).toBe('Loading…');
    expect(itemCount(0)).toBe('0 items');
    expect(itemCount(1)).toBe('1 item');
    expect(itemCount(1234)).toBe('1234 items');
  });
  it('names a tenant by its display name, else its name', () => {
    expect(tenantLabel({ id: 1, name: 'lab', displayName: 'The Lab' })).toBe('The Lab');
    expect(tenantLabel({ id: 1, name: 'lab', displayName: '' })).toBe('lab');
    expect(tenantLabel({ id: 1, name: 'lab' })).toBe('lab');
  });
  it('shows a reference as id:name, nothing for none', () => {
    expect(refLabel({ id: 3, name: 'mnist' })).toBe('3:mnist');
    expect(refLabel(null)).toBe('');
    expect(refLabel(undefined)).toBe('');
  });
  it('shows resources and the git model', () => {
    expect(resourcesLabel({ cpu: 2, memory: 8, gpu: 1 })).toBe('CPU 2, memory 8 GB, GPU 1');
    expect(gitModelLabel({ gitId: 1, owner: 'kqi', repository: 'demo', branch: 'main', commitId: 'abc123' })).toBe(
      'kqi/demo main abc123'
    );
    expect(gitModelLabel({ gitId: 1, owner: 'kqi', repository: 'demo', branch: null })).toBe('kqi/demo  ');
  });
  it('says whether a dataset is locked', () => {
    expect(lockedLabel(true)).toBe('yes (used by a run)');
    expect(lockedLabel(false)).toBe('no');
    expect(lockedLabel(undefined)).toBe('no');
  });
});

describe('entryRows', () => {
  it('lists each type, then the flat entries', () => {
    const rows = entryRows({
      id: 1,
      name: 'ds',
      entries: {
        training: [
          { id: 1, name: 'a', tags: [] },
          { id: 2, name: 'b', tags: [] }
        ],
        testing: []
      },
      flatEntries: [{ id: 9, name: 'z', tags: [] }]
    });
    expect(rows).toEqual([
      ['training', '1:a, 2:b'],
      ['testing', ''],
      ['(flat)', '9:z']
    ]);
  });
  it('has no rows for a dataset without entries', () => {
    expect(entryRows({ id: 1, name: 'ds', flatEntries: [] })).toEqual([]);
  });
});

describe('terminal text', () => {
  it('reports a normal close as closed, others with code and reason', () => {
    expect(closedState(1000, '')).toBe('closed');
    expect(closedState(1005, 'ignored')).toBe('closed');
    expect(closedState(1006, '')).toBe('closed (1006)');
    expect(closedState(4403, 'not yours')).toBe('closed (4403: not yours)');
  });
  it('strips colours, titles, charset switches and CRs', () => {
    expect(stripAnsi('\x1b[1;32mok\x1b[0m\r\n')).toBe('ok\n');
    expect(stripAnsi('\x1b]0;user@host\x07$ ls')).toBe('$ ls');
    expect(stripAnsi('\x1b(Bplain\x1b[?2004h')).toBe('plain');
    expect(stripAnsi('no escapes')).toBe('no escapes');
  });
  it('keeps only the tail of a long log', () => {
    expect(appendTail('abc', 'def', 4)).toBe('cdef');
    expect(appendTail('', 'xy', 4)).toBe('xy');
    expect(appendTail('abcdef', '', 2)).toBe('ef');
  });
});

describe('statusLabel', () => {
  it('names the phase of an admitted run that does not run yet', () => {
    expect(statusLabel('Pending', 'preparing')).toBe('Pending (preparing)');
    expect(statusLabel('Pending', 'starting')).toBe('Pending (starting)');
  });
  it('shows the contract status alone otherwise', () => {
    expect(statusLabel('Pending', 'queued')).toBe('Pending');
    expect(statusLabel('Running', 'running')).toBe('Running');
    expect(statusLabel('Completed', 'ended')).toBe('Completed');
    expect(statusLabel('Pending')).toBe('Pending');
  });
});

describe('missingLabel', () => {
  it('says what a platform run still needs, nothing when it may run', () => {
    expect(missingLabel(['entryPoint', 'containerImage'])).toBe(
      'to run on the platform this still needs: entryPoint, containerImage'
    );
    expect(missingLabel([])).toBe('');
    expect(missingLabel(undefined)).toBe('');
  });
});

describe('queueLabel', () => {
  it("is a queued run's place, nothing for one not queued", () => {
    expect(queueLabel(1)).toBe('#1 in queue');
    expect(queueLabel(null)).toBe('');
    expect(queueLabel(undefined)).toBe('');
  });
});

describe('optionalResource', () => {
  it('is the value, or the default when blank', () => {
    expect(optionalResource(0)).toBe('0');
    expect(optionalResource(4)).toBe('4');
    expect(optionalResource(null)).toBe('(default)');
  });
});

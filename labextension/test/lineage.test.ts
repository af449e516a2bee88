import { lineageLabel, lineagePanel, lineageTrees } from '../src/lineage';
import { ILineage } from '../src/types';

/** data 1 → preprocessing run 20 → data 2 → dataset 3 → training 4 → inference 5 */
const graph: ILineage = {
  root: 'data:2',
  nodes: [
    { key: 'data:1', type: 'data', id: 1, name: 'raw' },
    { key: 'preprocessing:20', type: 'preprocessing', id: 20, name: 'resize', status: 'Completed' },
    { key: 'data:2', type: 'data', id: 2, name: 'small' },
    { key: 'dataset:3', type: 'dataset', id: 3, name: 'set' },
    { key: 'training:4', type: 'training', id: 4, name: 'fit', status: 'Running' }
  ],
  edges: [
    { from: 'data:1', to: 'preprocessing:20', relation: 'input' },
    { from: 'preprocessing:20', to: 'data:2', relation: 'output' },
    { from: 'data:2', to: 'dataset:3', relation: 'member' },
    { from: 'dataset:3', to: 'training:4', relation: 'dataset' },
    { from: 'training:4', to: 'inference:5', relation: 'parent' }
  ]
};

/** A tree as `relation key(children)` strings. */
const flat = (branches: ReturnType<typeof lineageTrees>['upstream']): string[] =>
  branches.map(b => `${b.relation} ${b.node.key}` + (b.children.length ? `(${flat(b.children).join(', ')})` : ''));

describe('lineageTrees', () => {
  it('grows what the root was made from and what was made from it', () => {
    const trees = lineageTrees(graph);
    expect(trees.root.name).toBe('small');
    expect(flat(trees.upstream)).toEqual(['output preprocessing:20(input data:1)']);
    expect(flat(trees.downstream)).toEqual(['member dataset:3(dataset training:4(parent inference:5))']);
  });

  it('names a node the answer did not list by its key', () => {
    const leaf = lineageTrees(graph).downstream[0].children[0].children[0].node;
    expect(leaf).toEqual({ key: 'inference:5', type: 'inference', id: 5, name: '' });
  });

  it('stops at a node already in the tree, so a cycle cannot loop', () => {
    const cycle: ILineage = {
      root: 'training:1',
      nodes: [],
      edges: [
        { from: 'training:1', to: 'training:2', relation: 'parent' },
        { from: 'training:2', to: 'training:1', relation: 'parent' },
        { from: 'training:2', to: 'training:3', relation: 'parent' }
      ]
    };
    const trees = lineageTrees(cycle);
    expect(flat(trees.downstream)).toEqual(['parent training:2(parent training:3)']);
    expect(flat(trees.upstream)).toEqual(['parent training:2']);
  });

  it('is two empty trees for a lone root', () => {
    const trees = lineageTrees({ root: 'data:9', nodes: [], edges: [] });
    expect(trees).toEqual({ root: { key: 'data:9', type: 'data', id: 9, name: '' }, upstream: [], downstream: [] });
  });
});

describe('lineageLabel', () => {
  it('names the type, ID, name and status', () => {
    expect(lineageLabel(graph.nodes[4])).toBe('training 4:fit (Running)');
    expect(lineageLabel(graph.nodes[1])).toBe('preprocessing run 20:resize (Completed)');
    expect(lineageLabel({ key: 'data:7', type: 'data', id: 7, name: '' })).toBe('data 7');
  });
});

describe('lineagePanel', () => {
  it('is the panel that shows the type by ID, none for preprocessing runs', () => {
    expect(lineagePanel('data')).toBe('data');
    expect(lineagePanel('dataset')).toBe('datasets');
    expect(lineagePanel('training')).toBe('trainings');
    expect(lineagePanel('inference')).toBe('inference');
    expect(lineagePanel('notebook')).toBe('notebooks');
    expect(lineagePanel('preprocessing')).toBeNull();
  });
});

/**
 * A lineage graph (`GET /lineage`) as the trees the panels show: what the
 * root was made from (upstream) and what was made from it (downstream).
 * Pure, so it is unit-tested on its own.
 */
import { ILineage, ILineageNode, LineageType } from './types';

/** One node of a lineage tree, reached from its parent over an edge of `relation`. */
export interface ILineageBranch {
  node: ILineageNode;
  relation: string;
  children: ILineageBranch[];
}

/** The root of a lineage and its two trees. */
export interface ILineageTrees {
  root: ILineageNode;
  upstream: ILineageBranch[];
  downstream: ILineageBranch[];
}

/** The node of `key`; a node the answer did not list is named by its key alone. */
function nodeOf(graph: ILineage, key: string): ILineageNode {
  const found = graph.nodes.find(n => n.key === key);
  if (found) {
    return found;
  }
  const at = key.indexOf(':');
  return { key, type: key.slice(0, at) as LineageType, id: Number(key.slice(at + 1)), name: '' };
}

/**
 * The graph's upstream and downstream trees of its root. Each node appears
 * once per tree (the first way it is reached), so a cycle cannot loop.
 */
export function lineageTrees(graph: ILineage): ILineageTrees {
  const grow = (key: string, upstream: boolean, seen: Set<string>): ILineageBranch[] => {
    const branches: ILineageBranch[] = [];
    for (const edge of graph.edges) {
      const [near, far] = upstream ? [edge.to, edge.from] : [edge.from, edge.to];
      if (near !== key || seen.has(far)) {
        continue;
      }
      seen.add(far);
      branches.push({ node: nodeOf(graph, far), relation: edge.relation, children: [] });
    }
    for (const branch of branches) {
      branch.children = grow(branch.node.key, upstream, seen);
    }
    return branches;
  };
  return {
    root: nodeOf(graph, graph.root),
    upstream: grow(graph.root, true, new Set([graph.root])),
    downstream: grow(graph.root, false, new Set([graph.root]))
  };
}

const TYPE_LABELS: Record<LineageType, string> = {
  data: 'data',
  dataset: 'dataset',
  training: 'training',
  inference: 'inference',
  notebook: 'notebook',
  preprocessing: 'preprocessing run'
};

/** "training 7:resnet (Completed)": a node as the lineage view names it. */
export function lineageLabel(node: ILineageNode): string {
  const type = TYPE_LABELS[node.type] ?? node.type;
  const name = node.name ? `${node.id}:${node.name}` : String(node.id);
  return `${type} ${name}` + (node.status ? ` (${node.status})` : '');
}

/** The sidebar panel showing nodes of a type, for a link; null where none shows them by ID (preprocessing runs). */
export function lineagePanel(type: LineageType): string | null {
  const panels: Partial<Record<LineageType, string>> = {
    data: 'data',
    dataset: 'datasets',
    training: 'trainings',
    inference: 'inference',
    notebook: 'notebooks'
  };
  return panels[type] ?? null;
}

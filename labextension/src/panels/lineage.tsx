/**
 * The lineage of a data, dataset, run or preprocessing history
 * (`GET /lineage?type=&id=&depth=2`): what it was made from and what was
 * made from it, as two small trees whose nodes open in their panels.
 */
import * as React from 'react';

import { messageOf } from '../errors';
import { requestAPI } from '../handler';
import { ILineageBranch, lineageLabel, lineagePanel, lineageTrees } from '../lineage';
import { KqiModel } from '../model';
import { ILineage, ILineageNode, LineageType } from '../types';

function NodeLink(props: { node: ILineageNode; model: KqiModel }): JSX.Element {
  const panel = lineagePanel(props.node.type);
  const label = lineageLabel(props.node);
  const className = `kqi-lineage-node kqi-lineage-${props.node.type}`;
  if (!panel) {
    return <span className={className}>{label}</span>;
  }
  return (
    <button className={`kqi-link ${className}`} onClick={() => props.model.open({ panel, show: props.node.id })}>
      {label}
    </button>
  );
}

function Branches(props: { branches: ILineageBranch[]; model: KqiModel }): JSX.Element | null {
  if (!props.branches.length) {
    return null;
  }
  return (
    <ul className="kqi-lineage-tree">
      {props.branches.map(b => (
        <li key={b.node.key}>
          <span className="kqi-lineage-relation">{b.relation}</span> <NodeLink node={b.node} model={props.model} />
          <Branches branches={b.children} model={props.model} />
        </li>
      ))}
    </ul>
  );
}

/**
 * The lineage of `type` `id`, two levels each way. It reloads when `version`
 * changes; an error (e.g. a service without lineage) shows in place, not in
 * the panel's banner.
 */
export function LineageView(props: { type: LineageType; id: number; model: KqiModel; version?: number }): JSX.Element {
  const [graph, setGraph] = React.useState<ILineage | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    setError(null);
    requestAPI<ILineage>('lineage', {}, { type: props.type, id: props.id, depth: 2 }).then(setGraph, e => {
      setGraph(null);
      setError(messageOf(e));
    });
  }, [props.type, props.id, props.version]);
  if (error) {
    return (
      <div className="kqi-lineage">
        <h4>Lineage</h4>
        <span className="kqi-dim">Lineage unavailable: {error}</span>
      </div>
    );
  }
  if (!graph) {
    return (
      <div className="kqi-lineage">
        <h4>Lineage</h4>
        Loading…
      </div>
    );
  }
  const trees = lineageTrees(graph);
  const none = !trees.upstream.length && !trees.downstream.length;
  return (
    <div className="kqi-lineage">
      <h4>Lineage</h4>
      {none ? <span className="kqi-dim">Nothing made it and nothing was made from it.</span> : null}
      {trees.upstream.length ? (
        <div className="kqi-lineage-upstream">
          Made from
          <Branches branches={trees.upstream} model={props.model} />
        </div>
      ) : null}
      {trees.downstream.length ? (
        <div className="kqi-lineage-downstream">
          Used by
          <Branches branches={trees.downstream} model={props.model} />
        </div>
      ) : null}
    </div>
  );
}

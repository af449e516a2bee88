/**
 * Pickers of the run forms (training, inference; both hosts): the tenant's
 * registries, a registry's images and tags, a git endpoint's repositories,
 * branches and commits, the tenant's partitions, and its quota. Each offers
 * what the service lists and still takes what a user types (an image the
 * registry does not list, a commit hash): a listing that fails (no registry
 * login, a git host that cannot be reached) is said under the field, never
 * in the way.
 */
import * as React from 'react';

import { requestAPI } from './handler';
import { messageOf } from './errors';
import { IRef } from './types';

/** What a listing gave: its items, or why there are none. */
function useListing<T>(path: string | null, query?: Record<string, unknown>): [T[], string] {
  const [items, setItems] = React.useState<T[]>([]);
  const [note, setNote] = React.useState('');
  const key = path ? path + JSON.stringify(query ?? {}) : '';
  React.useEffect(() => {
    setItems([]);
    setNote('');
    if (!path) {
      return;
    }
    let current = true;
    requestAPI<T[]>(path, {}, query).then(
      list => current && setItems(Array.isArray(list) ? list : []),
      e => current && setNote(messageOf(e))
    );
    return () => {
      current = false;
    };
  }, [key]);
  return [items, note];
}

/** A text input offering `options` (a datalist), with a note under it when the listing failed. */
function Offered(props: {
  label: string;
  className: string;
  value: string;
  onChange: (v: string) => void;
  options: [string, string][];
  note: string;
  placeholder?: string;
}): JSX.Element {
  const id = React.useId();
  return (
    <label>
      {props.label}{' '}
      <input
        className={props.className}
        list={id}
        value={props.value}
        placeholder={props.placeholder}
        onChange={e => props.onChange(e.target.value)}
      />
      <datalist id={id}>
        {props.options.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </datalist>
      {props.note ? <span className="kqi-picker-note">{props.note}</span> : null}
    </label>
  );
}

export interface IImageValue {
  registryId: string;
  image: string;
  tag: string;
}

/** Registry (the tenant's, by name), image (the registry's list) and tag (the image's tags). */
export function ImagePicker(props: { value: IImageValue; onChange: (v: IImageValue) => void }): JSX.Element {
  const { value } = props;
  const [registries] = useListing<IRef>('tenant/registry/endpoints');
  const [images, imagesNote] = useListing<string>(value.registryId ? `registries/${value.registryId}/images` : null);
  const image = value.image.trim();
  const [tags, tagsNote] = useListing<string>(
    value.registryId && image && images.includes(image)
      ? `registries/${value.registryId}/images/${image.split('/').map(encodeURIComponent).join('/')}/tags`
      : null
  );
  return (
    <>
      <label>
        Registry{' '}
        <select
          className="kqi-field-registryId"
          value={value.registryId}
          onChange={e => props.onChange({ ...value, registryId: e.target.value })}
        >
          <option value="">(the tenant's default)</option>
          {registries.map(r => (
            <option key={r.id} value={r.id}>
              {r.name}
            </option>
          ))}
        </select>
      </label>
      <Offered
        label="Image"
        className="kqi-field-image"
        placeholder="python"
        value={value.image}
        onChange={v => props.onChange({ ...value, image: v })}
        options={images.map(i => [i, i])}
        note={imagesNote}
      />
      <Offered
        label="Tag"
        className="kqi-field-tag"
        placeholder="3.11"
        value={value.tag}
        onChange={v => props.onChange({ ...value, tag: v })}
        options={tags.map(t => [t, t])}
        note={tagsNote}
      />
    </>
  );
}

interface IRepository {
  owner: string;
  name: string;
  fullName?: string;
}

interface IBranch {
  branchName: string;
}

interface ICommit {
  commitId: string;
  comment?: string;
  committerName?: string;
}

export interface IModelValue {
  gitId: string;
  owner: string;
  repository: string;
  branch: string;
  commitId: string;
}

/** Owner, repository, branch and commit of a git endpoint, from its listings. */
export function ModelPicker(props: { value: IModelValue; onChange: (v: IModelValue) => void }): JSX.Element {
  const { value } = props;
  const [repos, reposNote] = useListing<IRepository>(value.gitId ? `git/${value.gitId}/repos` : null);
  const repoPath =
    value.gitId && value.owner && value.repository
      ? `git/${value.gitId}/repos/${encodeURIComponent(value.owner)}/${encodeURIComponent(value.repository)}`
      : null;
  const [branches, branchesNote] = useListing<IBranch>(repoPath ? `${repoPath}/branches` : null);
  const [commits, commitsNote] = useListing<ICommit>(
    repoPath ? `${repoPath}/commits` : null,
    value.branch ? { branch: value.branch } : undefined
  );
  const owners = [...new Set(repos.map(r => r.owner))];
  return (
    <>
      <Offered
        label="Owner"
        className="kqi-field-owner"
        value={value.owner}
        onChange={v => props.onChange({ ...value, owner: v, branch: '', commitId: '' })}
        options={owners.map(o => [o, o])}
        note={reposNote}
      />
      <Offered
        label="Repository"
        className="kqi-field-repository"
        value={value.repository}
        onChange={v => props.onChange({ ...value, repository: v, branch: '', commitId: '' })}
        options={repos.filter(r => !value.owner || r.owner === value.owner).map(r => [r.name, r.fullName ?? r.name])}
        note=""
      />
      <Offered
        label="Branch"
        className="kqi-field-branch"
        value={value.branch}
        onChange={v => props.onChange({ ...value, branch: v, commitId: '' })}
        options={branches.map(b => [b.branchName, b.branchName])}
        note={branchesNote}
      />
      <Offered
        label="Commit"
        className="kqi-field-commitId"
        placeholder="the branch's latest"
        value={value.commitId}
        onChange={v => props.onChange({ ...value, commitId: v })}
        options={commits.map(c => [c.commitId, `${c.commitId.slice(0, 8)} ${c.comment ?? ''}`.trim()])}
        note={commitsNote}
      />
    </>
  );
}

/** The tenant's partitions (`tenant/partitions`); blank is any node. */
export function PartitionSelect(props: { value: string; onChange: (v: string) => void }): JSX.Element {
  const [partitions] = useListing<string>('tenant/partitions');
  const offered = props.value && !partitions.includes(props.value) ? [props.value, ...partitions] : partitions;
  return (
    <label>
      Partition{' '}
      <select className="kqi-field-partition" value={props.value} onChange={e => props.onChange(e.target.value)}>
        <option value="">(any)</option>
        {offered.map(p => (
          <option key={p} value={p}>
            {p}
          </option>
        ))}
      </select>
    </label>
  );
}

interface IQuota {
  cpu: number;
  memory: number;
  gpu: number;
}

/** The tenant's quota, as the form's reminder (0 is unlimited). */
export function QuotaNote(): JSX.Element | null {
  const [quota, setQuota] = React.useState<IQuota | null>(null);
  React.useEffect(() => {
    requestAPI<IQuota>('tenant/quota').then(setQuota, () => setQuota(null));
  }, []);
  if (!quota) {
    return null;
  }
  const one = (n: number, unit = '') => (n ? `${n}${unit}` : 'unlimited');
  return (
    <div className="kqi-quota-note">
      Tenant quota: CPU {one(quota.cpu)}, memory {one(quota.memory, ' GB')}, GPU {one(quota.gpu)}
    </div>
  );
}

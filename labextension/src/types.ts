/**
 * The KAMONOHASHI v2 API's JSON (camelCase) as the panels read it: only the
 * fields the extension uses, so a model here may be a subset of the
 * service's. Optional fields are those a list row or an older run may lack.
 */

/** How the API refers to another resource: a dataset, a data, a git endpoint. */
export interface IRef {
  id: number;
  name: string;
}

/** A tenant of the account (`GET /account`). */
export interface ITenant {
  id: number;
  name: string;
  displayName?: string;
  /** the caller's roles in it (`GET /account`) */
  roles?: { id: number; name: string }[];
}

/** The user's account: who, the selected tenant and the others (`GET /account`). */
export interface IAccount {
  userName: string;
  selectedTenant: ITenant | null;
  tenants: ITenant[];
  /** added by the platform */
  isSystemAdmin?: boolean;
  defaultTenant?: ITenant | null;
  passwordChangeEnabled?: boolean;
}

/** A data (`GET /data`, `GET /data/{id}`). */
export interface IData extends IRef {
  memo?: string;
  tags: string[];
  createdAt?: string;
  createdBy?: string;
  /** The preprocessing history (its run's ID) that made it; null for uploaded data. */
  producedByRunId?: number | null;
}

/** A file of a data (`GET /data/{id}/files?withUrl=true`). */
export interface IDataFile {
  fileId: number;
  fileName: string;
  fileSize: number;
  url: string | null;
}

/** A dataset; `entries` (by type: training, validation, testing) only in its details. */
export interface IDataset extends IRef {
  memo?: string;
  createdAt?: string;
  createdBy?: string;
  isLocked?: boolean;
  entries?: Record<string, IData[]>;
  flatEntries?: IData[];
}

/** The image a run runs in. */
export interface IContainerImage {
  registryId?: number | null;
  image: string;
  tag: string;
}

/** The git commit a training runs. */
export interface IGitModel {
  gitId: number;
  owner: string;
  repository: string;
  branch?: string | null;
  commitId?: string | null;
}

/** An environment variable of a run. */
export interface IRunOption {
  key: string;
  value: string;
}

/** What every kind of run's list row has. */
export interface IRun extends IRef {
  status: string;
  /** Where the run is: queued, preparing (cloning, staging), starting (a notebook's server), running, ended. */
  phase?: string;
  memo?: string;
  createdAt?: string;
  createdBy?: string;
}

/** A training's list row (`GET /training`). */
export interface ITraining extends IRun {
  entryPoint?: string;
  dataSet?: IRef | null;
}

/** A training's details (`GET /training/{id}`). */
export interface ITrainingDetails extends ITraining {
  gitModel: IGitModel;
  containerImage: IContainerImage | null;
  options: IRunOption[];
  cpu: number;
  memory: number;
  gpu: number;
  partition?: string;
  zip: boolean;
  conditionNote?: string;
  queuePosition?: number | null;
  startedAt?: string;
  completedAt?: string;
  parents?: ITraining[];
  /** whether the platform's executor runs the image, and what it says when it does not */
  imageUsed?: boolean;
  imageNote?: string | null;
  /** the image pull of a run in its image (the container executor), layer by layer */
  imagePull?: IImagePull | null;
}

/** An image pull's progress (`imagePull` of a run's details). */
export interface IImagePull {
  image: string;
  done: boolean;
  error: string | null;
  layersDone: number;
  layerCount: number;
  message: string;
}

/** A notebook's list row (`GET /notebook`). */
export interface INotebook extends IRun {
  expiresAt?: string | null;
  remainingSeconds?: number | null;
  /** Not the API's: when the row arrived (ms), to count its `remainingSeconds` down from. */
  receivedAt?: number;
}

/** A notebook's details (`GET /notebook/{id}`). */
export interface INotebookDetails extends INotebook {
  dataSet?: IRef | null;
  containerImage?: IContainerImage | null;
  cpu: number;
  memory: number;
  gpu: number;
  startedAt?: string | null;
  completedAt?: string | null;
  expiresIn?: number | null;
  partition?: string | null;
  serverName?: string | null;
  url?: string | null;
  conditionNote?: string | null;
}

/** Where a notebook answers (`GET /notebook/{id}/endpoint`). */
export interface INotebookEndpoint {
  url?: string | null;
  status?: string;
  remainingSeconds?: number | null;
}

/** A training's TensorBoard (`PUT /training/{id}/tensorboard`). */
export interface ITensorBoard {
  url: string | null;
  status: string;
}

/** One directory of a run's output (`GET /{kind}/{id}/container-files`). */
export interface IContainerFiles {
  dirs: { dirName: string; dirPath: string }[];
  files: { key: string; fileName: string; size: number; lastModified?: string }[];
  exceeded: boolean;
  limit?: number;
}

/** A multipart upload's ticket (`GET /upload/parameter`). */
export interface IUploadTicket {
  uris: string[];
  uploadId: string;
  key: string;
  fileName: string;
  storedPath: string;
}

/** An inference's list row (`GET /inferences`): a training's, plus the value its run wrote. */
export interface IInference extends ITraining {
  /** The first line of its /kqi/output/value.txt; null without one. */
  outputValue?: string | null;
}

/** An inference's details (`GET /inferences/{id}`): `parents` are trainings, `parentInferences` inferences. */
export interface IInferenceDetails extends ITrainingDetails {
  outputValue?: string | null;
  parentInferences?: IInference[];
}

/** A preprocessing definition's list row (`GET /preprocessings`). */
export interface IPreprocessing extends IRef {
  memo?: string;
  cpu?: number | null;
  memory?: number | null;
  gpu?: number | null;
  createdAt?: string;
  createdBy?: string;
}

/** A preprocessing's details (`GET /preprocessings/{id}`). */
export interface IPreprocessingDetails extends IPreprocessing {
  entryPoint?: string | null;
  containerImage?: IContainerImage | null;
  gitModel?: IGitModel | null;
  /** It has histories: only name, memo and resources may change. */
  isLocked?: boolean;
  /** What a run on the platform still needs (field names); [] when it may run. */
  missingForRun?: string[];
}

/** One run of a preprocessing on one data (`GET /preprocessings/{id}/histories`). */
export interface IHistory {
  key?: string;
  status: string;
  statusType?: string;
  createdAt?: string;
  dataId: number;
  dataName?: string;
  preprocessId: number;
  preprocessName?: string;
  /** The run behind it (its log, files, halt); null for a history made by the external flow. */
  runId?: number | null;
  phase?: string;
  conditionNote?: string | null;
  queuePosition?: number | null;
  startedAt?: string | null;
  completedAt?: string | null;
  outputDataIds?: number[];
  cpu?: number | null;
  memory?: number | null;
  gpu?: number | null;
  partition?: string | null;
}

/** The kinds of lineage nodes. */
export type LineageType = 'data' | 'dataset' | 'training' | 'inference' | 'notebook' | 'preprocessing';

/** A node of a lineage graph: `key` is `type:id`. */
export interface ILineageNode {
  key: string;
  type: LineageType;
  id: number;
  name: string;
  status?: string | null;
}

/** An edge of a lineage graph: `from` was used for, or made, `to`. */
export interface ILineageEdge {
  from: string;
  to: string;
  relation: string;
}

/** What `GET /lineage?type=&id=&depth=` answers. */
export interface ILineage {
  root: string;
  nodes: ILineageNode[];
  edges: ILineageEdge[];
}

/**
 * Views of one run shared by the Trainings, Inference and Preprocessing
 * panels: its live log, its output files, and the shell terminal. Each takes
 * the run's kind; its API path follows from it (`RUN_API_PATH`).
 */
import * as React from 'react';

import { messageOf } from '../errors';
import { appendTail, closedState, stripAnsi } from '../format';
import { requestAPI, requestRaw, runUrl } from '../handler';
import { host } from '../host';
import { IContainerFiles } from '../types';
import { parentDir, RunKind, runPath } from '../urls';

/** At most this much of a log stays on screen (its tail). */
const MAX_LOG_CHARS = 2 * 1024 * 1024;

/**
 * The run's stdout+stderr, followed live through `kqi/{kind}/{id}/log`
 * until the run ends; `onEnd` is called then.
 */
export function LogView(props: { kind: RunKind; id: number; onEnd?: () => void }): JSX.Element {
  const [text, setText] = React.useState('');
  const [state, setState] = React.useState('connecting');
  const pre = React.useRef<HTMLPreElement>(null);
  React.useEffect(() => {
    const abort = new AbortController();
    let offset = 0;
    setText('');
    const follow = async () => {
      const decoder = new TextDecoder();
      for (let attempt = 0; attempt < 20 && !abort.signal.aborted; attempt++) {
        const response = await requestRaw(runUrl(props.kind, props.id, 'log', { offset }), {
          signal: abort.signal
        });
        setState('live');
        const reader = response.body!.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            break;
          }
          offset += value.byteLength;
          const chunk = decoder.decode(value, { stream: true });
          setText(old => appendTail(old, chunk, MAX_LOG_CHARS));
        }
        // the stream ends when the run does; ask once more in case a proxy cut it short
        const check = await requestRaw(runUrl(props.kind, props.id, 'log', { offset, follow: 'false' }), {
          signal: abort.signal
        });
        const rest = await check.text();
        if (rest) {
          offset += new TextEncoder().encode(rest).byteLength;
          setText(old => appendTail(old, rest, MAX_LOG_CHARS));
        }
        const status = check.headers.get('X-Run-Status') ?? '';
        if (!['Pending', 'Running'].includes(status)) {
          break;
        }
      }
      setState('ended');
      props.onEnd?.();
    };
    follow().catch(e => {
      if (!abort.signal.aborted) {
        setState(`error: ${messageOf(e)}`);
      }
    });
    return () => abort.abort();
  }, [props.kind, props.id]);
  React.useEffect(() => {
    if (pre.current) {
      pre.current.scrollTop = pre.current.scrollHeight;
    }
  }, [text]);
  return (
    <div className="kqi-log">
      <div className="kqi-log-state">Log ({state})</div>
      <pre className="kqi-log-text" ref={pre}>
        {text}
      </pre>
    </div>
  );
}

/** Browses the run's /kqi/output; files download through `kqi/{kind}/{id}/output`. */
export function OutputFiles(props: {
  kind: RunKind;
  id: number;
  version: number;
  onError: (e: unknown) => void;
}): JSX.Element {
  const [path, setPath] = React.useState('/');
  const [listing, setListing] = React.useState<IContainerFiles | null>(null);
  React.useEffect(() => {
    requestAPI<IContainerFiles>(runPath(props.kind, props.id, 'container-files'), {}, { path }).then(setListing, e => {
      setListing({ dirs: [], files: [], exceeded: false });
      props.onError(e);
    });
  }, [props.kind, props.id, path, props.version]);
  const up = parentDir(path);
  return (
    <div className="kqi-output">
      <div className="kqi-output-path">
        Output files: {path}{' '}
        {up !== null ? (
          <button className="kqi-link" onClick={() => setPath(up)}>
            ↑ up
          </button>
        ) : null}
      </div>
      <ul className="kqi-files">
        {listing === null ? <li>Loading…</li> : null}
        {(listing?.dirs ?? []).map(d => (
          <li key={d.dirPath}>
            <button className="kqi-link kqi-dir" onClick={() => setPath(d.dirPath)}>
              📁 {d.dirName}
            </button>
          </li>
        ))}
        {(listing?.files ?? []).map(f => (
          <li key={f.key}>
            <a
              className="kqi-output-file"
              href={runUrl(props.kind, props.id, 'output', { path: f.key })}
              download={f.fileName}
            >
              {f.fileName}
            </a>{' '}
            <span className="kqi-dim">{f.size} B</span>
          </li>
        ))}
        {listing && !listing.dirs.length && !listing.files.length ? <li className="kqi-dim">(empty)</li> : null}
        {listing?.exceeded ? (
          <li className="kqi-warn">Only the first {listing.limit ?? 10000} entries are listed.</li>
        ) : null}
      </ul>
    </div>
  );
}

/**
 * A plain-text terminal on the run's shell websocket (terminado's protocol):
 * output appended as text, one input line sent on Enter.
 */
export function ShellView(props: { kind: RunKind; id: number }): JSX.Element {
  const [output, setOutput] = React.useState('');
  const [state, setState] = React.useState('connecting');
  const [line, setLine] = React.useState('');
  const socket = React.useRef<WebSocket | null>(null);
  const pre = React.useRef<HTMLPreElement>(null);
  React.useEffect(() => {
    const ws = new WebSocket(host().shellUrl(props.kind, props.id));
    socket.current = ws;
    ws.onopen = () => {
      setState('connected');
      ws.send(JSON.stringify(['set_size', 40, 120]));
    };
    ws.onmessage = e => {
      const [kind, text] = JSON.parse(e.data);
      if (kind === 'stdout') {
        setOutput(old => appendTail(old, stripAnsi(String(text)), MAX_LOG_CHARS));
      } else if (kind === 'disconnect') {
        setState('closed');
      }
    };
    ws.onclose = e => setState(closedState(e.code, e.reason));
    return () => ws.close();
  }, [props.kind, props.id]);
  React.useEffect(() => {
    if (pre.current) {
      pre.current.scrollTop = pre.current.scrollHeight;
    }
  }, [output]);
  const send = () => {
    socket.current?.send(JSON.stringify(['stdin', line + '\n']));
    setLine('');
  };
  return (
    <div className="kqi-shell">
      <div className="kqi-shell-state">
        Shell into {props.kind} {props.id}: {state}
      </div>
      <pre className="kqi-shell-output" ref={pre}>
        {output}
      </pre>
      <input
        className="kqi-shell-input"
        value={line}
        placeholder="command, then Enter"
        onChange={e => setLine(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter') {
            send();
          } else if (e.key === 'c' && e.ctrlKey) {
            socket.current?.send(JSON.stringify(['stdin', '\x03']));
          }
        }}
      />
    </div>
  );
}

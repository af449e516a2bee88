/**
 * A run's shell as a real terminal in the console (xterm.js over the shell's
 * websocket, terminado's protocol: `["stdin", text]`, `["set_size", rows,
 * cols]` out; `["setup"]`, `["stdout", text]`, `["disconnect", code]` in).
 * Full-screen programs, colours, Ctrl-C and resizing work as in a terminal.
 * JupyterLab, which has terminals of its own, shows `runview.ShellView`.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import * as React from 'react';

import '@xterm/xterm/css/xterm.css';
import { closedState } from '../format';
import { host } from '../host';
import { RunKind } from '../urls';

export function TerminalView(props: { kind: RunKind; id: number }): JSX.Element {
  const box = React.useRef<HTMLDivElement>(null);
  const [state, setState] = React.useState('connecting');
  React.useEffect(() => {
    const terminal = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000 });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(box.current!);
    fit.fit();
    const ws = new WebSocket(host().shellUrl(props.kind, props.id));
    const sendSize = () => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify(['set_size', terminal.rows, terminal.cols]));
      }
    };
    ws.onopen = () => {
      setState('connected');
      sendSize();
      terminal.focus();
    };
    ws.onmessage = e => {
      const [kind, text] = JSON.parse(e.data);
      if (kind === 'stdout') {
        terminal.write(String(text));
      } else if (kind === 'disconnect') {
        setState('closed');
      }
    };
    ws.onclose = e => setState(closedState(e.code, e.reason));
    const typed = terminal.onData(data => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify(['stdin', data]));
      }
    });
    const resized = terminal.onResize(sendSize);
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box.current!);
    return () => {
      observer.disconnect();
      typed.dispose();
      resized.dispose();
      ws.close();
      terminal.dispose();
    };
  }, [props.kind, props.id]);
  return (
    <div className="kqi-terminal">
      <div className="kqi-shell-state">
        Shell into {props.kind} {props.id}: {state}
      </div>
      <div className="kqi-terminal-screen" ref={box} />
    </div>
  );
}

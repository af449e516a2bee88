/**
 * The console's entry point (bundled on its own, without JupyterLab, by
 * `jlpm build:console`): installs the console host, then renders the app
 * into the page the kqi service serves at `/services/kqi/`.
 */
import * as React from 'react';
import { createRoot } from 'react-dom/client';

import '../../style/base.css';
import '../../style/console.css';
import { setHost } from '../host';
import { KqiModel } from '../model';
import { ConsoleApp } from './app';
import { consoleHost } from './host';

const element = document.getElementById('kqi-console')!;
const base = element.dataset.base ?? '/services/kqi/';
setHost(consoleHost(base));
createRoot(element).render(
  <ConsoleApp base={base} hubBase={element.dataset.hubBase ?? '/hub/'} model={new KqiModel()} />
);

import { contextBridge, ipcRenderer } from 'electron';
import { createBridge } from './bridge.js';

// Sandboxed preload (contextIsolation + sandbox): the page gets `window.lipsync`, a
// LipsyncBridge (shared/ipc.ts) with call / onState / onLog, plus openPath, showInFolder and pickFolder
// (with its flag canPickFolder; desktop only), and nothing else.
contextBridge.exposeInMainWorld('lipsync', createBridge(ipcRenderer));

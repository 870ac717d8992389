/**
 * Start at login. macOS and Windows: `app.setLoginItemSettings` (the shell calls it).
 * Linux has no such API in Electron: the XDG autostart spec says a .desktop file in
 * ~/.config/autostart starts the app at login, so the shell writes or removes this one.
 */

export const AUTOSTART_FILE_NAME = 'lipsync.desktop';

/** Quote one Exec argument per the Desktop Entry spec. */
function execArg(a: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a)) return a;
  return `"${a.replace(/(["`$\\])/g, '\\$1')}"`;
}

/** The autostart entry: `exec` is the AppImage ($APPIMAGE) or the installed binary. */
export function autostartDesktopEntry(exec: string, args: string[] = ['--hidden']): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=lipsync',
    'Comment=Two-way file sync over SSH',
    `Exec=${[exec, ...args].map(execArg).join(' ')}`,
    'Icon=lipsync',
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

/** Started by the login item / autostart entry: stay in the tray, open no window. */
export function startedHidden(argv: readonly string[], wasOpenedAsHidden = false): boolean {
  return wasOpenedAsHidden || argv.includes('--hidden');
}

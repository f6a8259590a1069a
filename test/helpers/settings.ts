// App settings that break naive env-file handling: each must reach the app's process.env byte
// for byte, whether the deploy starts the app (docker create --env-file app.env) or compose does
// (env_file with format: raw). Shared by the compose test and the deploy end-to-end test.
export const awkwardSettings: Record<string, string> = {
  BERTH_T_DOLLAR: 'a$b${HOME}$',
  BERTH_T_DOUBLE_DOLLAR: 'pa$$word$$',
  BERTH_T_SINGLE_QUOTES: "'quoted' it's",
  BERTH_T_DOUBLE_QUOTES: '"quoted" say "hi',
  BERTH_T_HASH: 'before #after#',
  BERTH_T_BACKSLASH: 'C:\\dir\\n\\t\\\\end\\',
  BERTH_T_SPACES: '  two leading, inner  and two trailing  ',
  BERTH_T_EQUALS: 'a=b==c=',
  BERTH_T_EMPTY: '',
  BERTH_T_ALL: `$x $$ ' " # \\ = ü`,
};

/** The lines of an app.env holding awkwardSettings: KEY=VALUE, the value verbatim. */
export const awkwardSettingsFile = Object.entries(awkwardSettings)
  .map(([key, value]) => `${key}=${value}`)
  .join('\n');

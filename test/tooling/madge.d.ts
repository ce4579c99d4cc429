/** The part of madge's JS API (lib/api.js) the structure test uses: madge ships no types. */
declare module 'madge' {
  interface MadgeResult {
    /** Each module (path relative to the base dir) with the modules it imports. */
    obj(): Record<string, string[]>;
    /** Each cycle as the list of modules in it. */
    circular(): string[][];
  }
  function madge(path: string | string[], config?: { fileExtensions?: string[]; tsConfig?: string }): Promise<MadgeResult>;
  export = madge;
}

// Custom DAP events between the adapter and the extension (one place, as LSP methods are typed).

/**
 * Body: the run's id and folder, sent once the run has started. The extension follows the run
 * from that folder (the one record of it), as the language server does.
 */
export const RUN_EVENT = "memlens/run";
export interface RunEventBody {
  id: string;
  dir: string;
}

// Entry of the MemLens language server (bundled to dist/server.js). The transport comes from
// the command line as vscode-languageserver reads it: --node-ipc from the extension, --stdio in tests.
import { createConnection, ProposedFeatures } from "vscode-languageserver/node";
import { MemlensServer } from "./server";

new MemlensServer(createConnection(ProposedFeatures.all)).listen();

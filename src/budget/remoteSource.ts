// Checkpoint bytes from the GPU host (or inside its wrapper: docker exec, kubectl exec), through
// the runner's place and quoting. The host's own Python reads the bytes, so the same code works in
// containers without GNU coreutils; bytes come back base64 on stdout.
import { runToEnd } from "../runner/exec";
import { commandAt, describePlace, type ExecutionPlace } from "../runner/place";
import type { ByteSource } from "./safetensors";

const READ_SCRIPT =
  "import sys,os,base64\n" +
  "p=os.path.expanduser(sys.argv[2])\n" +
  "if sys.argv[1]=='size': print(os.path.getsize(p))\n" +
  "elif sys.argv[1]=='list': print('\\n'.join(sorted(os.listdir(p))))\n" +
  "else:\n" +
  " f=open(p,'rb'); f.seek(int(sys.argv[3])); sys.stdout.write(base64.b64encode(f.read(int(sys.argv[4]))).decode())\n";

export class RemoteByteSource implements ByteSource {
  readonly where: string;

  constructor(
    private readonly place: ExecutionPlace,
    private readonly python: string,
    private readonly timeoutMs = 60_000,
  ) {
    this.where = describePlace(place);
  }

  private async call(args: string[]): Promise<string> {
    const command = commandAt(this.place, [this.python, "-c", READ_SCRIPT, ...args]);
    const ended = await runToEnd(command, { timeoutMs: this.timeoutMs });
    if (ended.spawnError) throw new Error(`could not start ${command.file} (${ended.spawnError.message})`);
    if (ended.timedOut) throw new Error(`no answer from ${this.where} within ${this.timeoutMs / 1000} s`);
    if (ended.exitCode !== 0) {
      const last = ended.stderr.trim().split(/\r?\n/).at(-1) ?? "";
      throw new Error(`${args[0]} failed on ${this.where} (exit ${ended.exitCode ?? ended.signal}): ${last}`);
    }
    return ended.stdout;
  }

  async size(filePath: string): Promise<number> {
    const text = (await this.call(["size", filePath])).trim();
    const size = Number(text);
    if (!Number.isSafeInteger(size))
      throw new Error(`unexpected size "${text}" for ${filePath} on ${this.where}`);
    return size;
  }

  async read(filePath: string, offset: number, length: number): Promise<Uint8Array> {
    const text = await this.call(["read", filePath, String(offset), String(length)]);
    return new Uint8Array(Buffer.from(text.trim(), "base64"));
  }

  async list(dir: string): Promise<string[]> {
    return (await this.call(["list", dir])).split("\n").filter((n) => n !== "");
  }

  join(dir: string, name: string): string {
    return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
  }
}

// quoteShellCommand against real shells: every word must reach the program unchanged, and no word
// may be run.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { quoteShellCommand } from "../../../src/runner/quote";
import { commandAt, placeOf, SSH_DEFAULT_ARGS } from "../../../src/runner/place";
import { tempDir } from "../../remote/helpers";

const work = tempDir("quote");
const marker = path.join(work, "MARKER");

const HOSTILE = [
  "plain",
  "two words",
  "",
  " ",
  "\t",
  "it's",
  "''",
  "'\\''",
  'double "quotes"',
  `$(touch ${marker})`,
  `\`touch ${marker}\``,
  `; touch ${marker}`,
  `&& touch ${marker}`,
  `| touch ${marker}`,
  `> ${marker}`,
  `newline\ntouch ${marker}`,
  "\r\n",
  "$HOME ${HOME} $0 $1 $@ $*",
  "~",
  "~root",
  "*",
  "?",
  "[a-z]",
  "{a,b}",
  "!",
  "#comment",
  "back\\slash\\",
  "\\n",
  "ünïcødé ✓ 日本語 🙂",
  "-n",
  "-e",
  "--",
  "A=B",
  "=",
  "%s",
];

const PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))";

const shells = ["/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/zsh", "/bin/ksh"].filter((shell) =>
  existsSync(shell),
);

for (const shell of shells) {
  void test(`hostile words pass through ${shell} unchanged and run nothing`, () => {
    const line = quoteShellCommand(["python3", "-c", PRINT_ARGV, ...HOSTILE]);
    const output = execFileSync(shell, ["-c", line], { encoding: "utf8", cwd: work });
    assert.deepEqual(JSON.parse(output), HOSTILE);
    assert.equal(existsSync(marker), false);
  });
}

void test("each hostile word alone also survives (no word depends on its neighbours)", () => {
  for (const word of HOSTILE) {
    const output = execFileSync("/bin/sh", ["-c", quoteShellCommand(["python3", "-c", PRINT_ARGV, word])], {
      encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(output), [word], JSON.stringify(word));
  }
  assert.equal(existsSync(marker), false);
});

void test("safe words stay readable; assignments and tildes are quoted", () => {
  assert.equal(
    quoteShellCommand(["python3", "/a/b-c_d.py", "--x=1", "a:b,c@d%e+f"]),
    "python3 /a/b-c_d.py '--x=1' a:b,c@d%e+f",
  );
  assert.equal(quoteShellCommand(["A=B", "cmd"]), "'A=B' cmd");
  assert.equal(quoteShellCommand(["~/x"]), "'~/x'");
  assert.equal(quoteShellCommand(["it's"]), "'it'\\''s'");
  assert.equal(quoteShellCommand([""]), "''");
});

void test("a NUL character and an empty command are refused with a message", () => {
  assert.throws(
    () => quoteShellCommand(["ok", "a\u0000b"]),
    /Argument 2 of the command contains a NUL character/,
  );
  assert.throws(() => quoteShellCommand([]), /empty command/);
});

void test("commandAt: ssh gets one quoted command string after --, the wrapper goes inside it", () => {
  const place = placeOf({
    host: "gpu1",
    sshArgs: ["-p", "2222"],
    wrapper: ["docker", "exec", "-i", "my box"],
  });
  const command = commandAt(place, ["python3", "-c", "print('x')"]);
  assert.equal(command.file, "ssh");
  assert.deepEqual(command.args, [
    "-p",
    "2222",
    ...SSH_DEFAULT_ARGS,
    "gpu1",
    "--",
    "docker exec -i 'my box' python3 -c 'print('\\''x'\\'')'",
  ]);
  const local = commandAt(placeOf({ wrapper: ["kubectl", "exec", "-i", "pod", "--"] }), ["python3", "a b"]);
  assert.deepEqual(local, { file: "kubectl", args: ["exec", "-i", "pod", "--", "python3", "a b"] });
  assert.deepEqual(commandAt(placeOf({}), ["python3", "x"]), { file: "python3", args: ["x"] });
});

void test("a host that ssh would read as an option is refused", () => {
  assert.throws(() => placeOf({ host: "-oProxyCommand=touch /tmp/x" }), /not a valid ssh destination/);
  assert.throws(() => placeOf({ host: "a b" }), /not a valid ssh destination/);
  assert.throws(() => placeOf({ wrapper: ["docker", ""] }), /memlens\.wrapper .* has an empty word/);
  assert.equal(placeOf({ host: "  " }).host, null, "blank host = local");
});

// npm runs `prepare` after `npm ci` here, and when this folder is installed
// into another project (`npm install ./client/typescript`): then without the
// devDependencies, which hold the compiler. Installs them from the lockfile
// (scripts off: this is the script) when they are missing, then builds dist/.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const tsc = "node_modules/typescript/bin/tsc";
if (!existsSync(tsc)) {
  execFileSync("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund"], { stdio: "inherit" });
}
execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { stdio: "inherit" });

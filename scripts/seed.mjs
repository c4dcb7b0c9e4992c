// Writes the fixtures as SQL for `wrangler d1 execute --local --file`.
import { writeFileSync, mkdirSync } from "node:fs";
import { fixtureStatements } from "./fixtures.mjs";

const out = process.argv[2] ?? "build/seed.sql";
mkdirSync("build", { recursive: true });
writeFileSync(out, fixtureStatements().join(";\n") + ";\n");

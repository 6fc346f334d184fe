import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ERROR_CODES } from "@llmos/protocol";
import { renderErrorTables } from "../../../scripts/error-tables.mjs";
import { statusForErrorCode } from "../src/errors.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

test("the SDK's and the Python client's error tables are the ones generated from @llmos/protocol (npm run gen:errors)", () => {
  for (const [file, text] of Object.entries(renderErrorTables(ERROR_CODES)))
    assert.equal(readFileSync(path.join(REPO, file), "utf8"), text, `${file} is stale: run npm run gen:errors`);
  for (const [code, { status }] of Object.entries(ERROR_CODES)) assert.equal(statusForErrorCode(code), status, code);
});

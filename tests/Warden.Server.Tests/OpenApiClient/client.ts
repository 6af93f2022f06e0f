// A client made only from the generated types (schema.ts) and openapi-fetch; tsc type-checks every call
// against the served document before it runs against the live server.
import createClient from "openapi-fetch";
import fs from "node:fs";
import type { paths } from "./schema.js";

const [baseUrl, key, imagePath] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });
const image = new Blob([fs.readFileSync(imagePath)], { type: "image/jpeg" });
const results: Record<string, unknown> = {};

function fail(step: string, status: number, error: unknown): never {
  console.error(JSON.stringify({ step, status, error }));
  process.exit(1);
}

// Hash: the raw body.
const hashed = await client.POST("/v1/hash", {
  body: image,
  bodySerializer: (b) => b as Blob,
  headers: { "Content-Type": "application/octet-stream" },
});
if (!hashed.data) fail("hash", hashed.response.status, hashed.error);
const md5: string = hashed.data.md5;
const pdq: string | undefined = hashed.data.pdq?.hash;
results.hash = { md5, pdq };

// Bank create (JSON body; only the name is required) and bulk import (a CSV body).
const bank = await client.POST("/v1/banks", { body: { name: "generated-client", kind: "block" } });
if (!bank.data) fail("bank create", bank.response.status, bank.error);
results.bank = { name: bank.data.name, kind: bank.data.kind, status: bank.response.status };

const csv = `signal_type,signal\nmd5,${md5}\n`;
const imported = await client.POST("/v1/banks/{name}/import", {
  params: { path: { name: "generated-client" }, query: { format: "csv" } },
  body: csv,
  bodySerializer: (b) => b as string,
  headers: { "Content-Type": "text/csv" },
});
if (!imported.data) fail("import", imported.response.status, imported.error);
results.import = { added: imported.data.added, processed: imported.data.processed };

// A problem+json error is typed too: a bank that does not exist.
const missing = await client.GET("/v1/banks/{name}", { params: { path: { name: "no-such-bank" } } });
results.missing = { status: missing.response.status, code: (missing.error as { code?: string } | undefined)?.code };

// Wait until the index has the imported entry, then match the image (multipart) and look up the hash.
for (let i = 0; i < 100; i++) {
  const lookup = await client.GET("/v1/match", { params: { query: { signal_type: "md5", signal: md5 } } });
  if (lookup.data?.hits.length) break;
  await new Promise((r) => setTimeout(r, 100));
}

const matched = await client.POST("/v1/match", {
  params: { query: { uploader_id: "generated-client-test" } },
  body: { file: image },
  bodySerializer: (b) => {
    // The body type is the union of the operation's media types; this call sends the multipart one.
    const form = new FormData();
    form.append("file", b instanceof Blob ? b : b.file, "photo.jpg");
    return form;
  },
});
if (!matched.data) fail("match", matched.response.status, matched.error);
results.match = { matched: matched.data.matched, banks: matched.data.hits.map((h) => h.bank) };

const lookup = await client.GET("/m/lookup", { params: { query: { signal_type: "md5", signal: md5 } } });
if (lookup.data === undefined) fail("lookup", lookup.response.status, lookup.error);
results.lookup = lookup.data;

console.log(JSON.stringify(results));

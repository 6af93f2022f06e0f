// Generates TypeScript types from the served OpenAPI document with openapi-typescript; format: binary is a Blob
// (the upload bodies), as openapi-typescript's docs recommend for file uploads.
import fs from "node:fs";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const [url, out] = process.argv.slice(2);
const blob = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const ast = await openapiTS(new URL(url), {
  transform(schema) {
    if (schema.format === "binary") return blob;
  },
});
fs.writeFileSync(out, astToString(ast));

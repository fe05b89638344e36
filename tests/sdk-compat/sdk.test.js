// Microsoft's Node.js DPS SDKs, unmodified, against `devkit dps-emulator` listening on
// 127.0.0.1:443 as `localhost`. Started by ./run, which passes the emulator's banner and the
// device identities in the environment (see there). Node trusts the emulator's CA through
// NODE_EXTRA_CA_CERTS: nothing in the SDKs is patched or configured.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { X509Security } = require('azure-iot-security-x509');

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} must be set (run this through tests/sdk-compat/run)`);
  return v;
};
const read = (name) => fs.readFileSync(env(name), 'utf8');
const service = ProvisioningServiceClient.fromConnectionString(env('DPS_CONNECTION_STRING'));
const idScope = env('DPS_ID_SCOPE');
const deviceHost = env('DPS_DEVICE_HOST');
const regA = env('REG_A');
const regDisabled = env('REG_DISABLED');
const certA = read('CERT_A');

const x509Enrollment = (registrationId, pem, extra = {}) => ({
  registrationId,
  attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: pem } } } },
  ...extra,
});
// runBulkEnrollmentOperation's promise form never settles (SDK 1.11.2 calls back only when
// given a callback), so it is called the callback way.
const bulk = (operation) => new Promise((resolve, reject) => {
  service.runBulkEnrollmentOperation(operation, (err, result) => (err ? reject(err) : resolve(result)));
});
const statusOf = (err) => err && (err.response ? err.response.statusCode : err.statusCode);
const register = (registrationId, certVar, keyVar) => {
  const security = new X509Security(registrationId, { cert: read(certVar), key: read(keyVar) });
  return ProvisioningDeviceClient.create(deviceHost, idScope, new Http(), security).register();
};

test('the printed connection string is port-less and the SDK accepts it as is', () => {
  assert.match(env('DPS_CONNECTION_STRING'), /^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=/);
  assert.equal(deviceHost, 'localhost');
});

test('service: create, get, read-modify-write update, stale ETag', async () => {
  const created = (await service.createOrUpdateIndividualEnrollment(x509Enrollment(regA, certA, {
    provisioningStatus: 'enabled',
    initialTwin: { tags: { site: 'lab-7' }, properties: { desired: { telemetryInterval: 30 } } },
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
  }))).responseBody;
  assert.equal(created.registrationId, regA);
  assert.ok(created.etag && !created.etag.startsWith('"'), `bare ETag in JSON, got ${created.etag}`);
  const info = created.attestation.x509.clientCertificates.primary.info;
  for (const field of ['subjectName', 'sha1Thumbprint', 'sha256Thumbprint', 'issuerName', 'notBeforeUtc', 'notAfterUtc', 'serialNumber', 'version']) {
    assert.ok(info[field] !== undefined && info[field] !== '', `certificate info.${field} missing: ${JSON.stringify(info)}`);
  }
  assert.match(info.subjectName, new RegExp(`(^|, )CN=${regA}(,|$)`));

  const got = await service.getIndividualEnrollment(regA);
  const fetched = got.responseBody;
  assert.equal(fetched.etag, created.etag);
  assert.equal(got.httpResponse.headers.etag, `"${created.etag}"`, 'quoted ETag header');
  assert.equal(fetched.attestation.x509.clientCertificates.primary.certificate, undefined, 'GET returns certificate info only');

  // Read-modify-write: PUT the enrollment as GET returned it (info only, no PEM).
  fetched.deviceId = 'lab-7-sensor';
  const updated = (await service.createOrUpdateIndividualEnrollment(fetched)).responseBody;
  assert.notEqual(updated.etag, created.etag);
  assert.equal(updated.deviceId, 'lab-7-sensor');
  assert.equal(updated.attestation.x509.clientCertificates.primary.info.sha256Thumbprint, info.sha256Thumbprint, 'stored certificate kept');
  assert.deepEqual(updated.initialTwin, created.initialTwin);

  const mechanism = (await service.getIndividualEnrollmentAttestationMechanism(regA)).responseBody;
  assert.equal(mechanism.type, 'x509');
  assert.equal(mechanism.x509.clientCertificates.primary.info.sha256Thumbprint, info.sha256Thumbprint);

  // The first GET's ETag is stale now.
  await assert.rejects(service.createOrUpdateIndividualEnrollment(fetched), (err) => statusOf(err) === 412);
});

test('service: bulk create (POST /enrollments/), query with paging, delete with If-Match', async () => {
  const ids = ['bulk-sdk-1', 'bulk-sdk-2', 'bulk-sdk-3', 'bulk-sdk-4', 'bulk-sdk-5'];
  const created = await bulk({ mode: 'create', enrollments: ids.map((id) => x509Enrollment(id, certA)) });
  assert.equal(created.isSuccessful, true, JSON.stringify(created));

  const query = service.createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' }, 2);
  const seen = [];
  let pages = 0;
  let continuations = 0;
  while (query.hasMoreResults) {
    // next() without an argument restarts from the first page (SDK 1.11.2): pass the token.
    const page = await query.next(query.continuationToken);
    pages += 1;
    seen.push(...page.responseBody.map((e) => e.registrationId));
    if (query.continuationToken) continuations += 1;
    assert.ok(pages < 20, 'paging ends');
  }
  for (const id of [regA, ...ids]) assert.ok(seen.includes(id), `${id} listed in ${seen}`);
  assert.ok(pages >= 3 && continuations >= 2, `paged by 2 (pages ${pages}, continuations ${continuations})`);

  const victim = (await service.getIndividualEnrollment('bulk-sdk-5')).responseBody;
  await assert.rejects(service.deleteIndividualEnrollment('bulk-sdk-5', 'AAAAAAAAAAA='), (err) => statusOf(err) === 412);
  await service.deleteIndividualEnrollment('bulk-sdk-5', victim.etag);
  await assert.rejects(service.getIndividualEnrollment('bulk-sdk-5'), (err) => statusOf(err) === 404);
  const rest = ids.slice(0, 4).map((id) => ({ registrationId: id, attestation: { type: 'x509' } }));
  const removed = await bulk({ mode: 'delete', enrollments: rest });
  assert.equal(removed.isSuccessful, true, JSON.stringify(removed));
});

test('device over HTTP with X.509: register, then the enrollment shows its registration', async () => {
  const result = await register(regA, 'CERT_A', 'KEY_A');
  assert.equal(result.registrationId, regA);
  assert.equal(result.deviceId, 'lab-7-sensor');
  assert.ok(result.assignedHub, JSON.stringify(result));
  const state = (await service.getDeviceRegistrationState(regA)).responseBody;
  assert.equal(state.status, 'assigned');
  const enrollment = (await service.getIndividualEnrollment(regA)).responseBody;
  assert.equal(enrollment.registrationState.assignedHub, result.assignedHub);
});

test('device over HTTP with X.509: another identity for the same registration ID is refused (401002)', async () => {
  await assert.rejects(register(regA, 'CERT_A_OTHER', 'KEY_A_OTHER'), (err) => {
    assert.equal(statusOf(err), 401, String(err));
    return true;
  });
});

test('device over HTTP with X.509: a device without an enrollment is unauthorized (401002), as DPS answers', async () => {
  await assert.rejects(register(env('REG_NOBODY'), 'CERT_NOBODY', 'KEY_NOBODY'), (err) => {
    assert.equal(statusOf(err), 401, String(err));
    return true;
  });
});

test('device over HTTP with X.509: a disabled enrollment does not assign', async () => {
  await service.createOrUpdateIndividualEnrollment(x509Enrollment(regDisabled, read('CERT_DISABLED'), { provisioningStatus: 'disabled' }));
  await assert.rejects(register(regDisabled, 'CERT_DISABLED', 'KEY_DISABLED'), (err) => {
    assert.equal(err.result && err.result.status, 'disabled', String(err));
    return true;
  });
});

// Enrollment groups (X.509 CA): the group holds the root; the device presents its leaf and the
// intermediate (Node's TLS sends the PEM chain given as `cert`).
const groupId = 'sdk-group-1';
const groupDev = env('REG_GROUP_DEV');
const caGroup = (id, pem, extra = {}) => ({
  enrollmentGroupId: id,
  attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: pem } } } },
  ...extra,
});

test('service: enrollment groups: create, get, read-modify-write, stale ETag, query, delete', async () => {
  const created = (await service.createOrUpdateEnrollmentGroup(caGroup(groupId, read('GROUP_ROOT'), { provisioningStatus: 'enabled' }))).responseBody;
  assert.equal(created.enrollmentGroupId, groupId);
  assert.ok(created.etag && !created.etag.startsWith('"'), `bare ETag in JSON, got ${created.etag}`);
  const info = created.attestation.x509.signingCertificates.primary.info;
  assert.match(info.subjectName, /CN=sdk group root/);

  const got = await service.getEnrollmentGroup(groupId);
  const fetched = got.responseBody;
  assert.equal(got.httpResponse.headers.etag, `"${created.etag}"`, 'quoted ETag header');
  assert.equal(fetched.attestation.x509.signingCertificates.primary.certificate, undefined, 'GET returns certificate info only');
  fetched.initialTwin = { tags: { fleet: 'sdk' } };
  const updated = (await service.createOrUpdateEnrollmentGroup(fetched)).responseBody;
  assert.notEqual(updated.etag, created.etag);
  assert.equal(updated.attestation.x509.signingCertificates.primary.info.sha256Thumbprint, info.sha256Thumbprint, 'stored certificate kept');
  assert.deepEqual(updated.initialTwin, fetched.initialTwin);
  await assert.rejects(service.createOrUpdateEnrollmentGroup(fetched), (err) => statusOf(err) === 412);

  const mechanism = (await service.getEnrollmentGroupAttestationMechanism(groupId)).responseBody;
  assert.equal(mechanism.x509.signingCertificates.primary.info.sha256Thumbprint, info.sha256Thumbprint);

  const other = (await service.createOrUpdateEnrollmentGroup(caGroup('sdk-group-2', read('GROUP_ROOT')))).responseBody;
  const query = service.createEnrollmentGroupQuery({ query: 'SELECT * FROM enrollmentGroups' }, 1);
  const seen = [];
  let pages = 0;
  while (query.hasMoreResults) {
    const page = await query.next(query.continuationToken);
    pages += 1;
    seen.push(...page.responseBody.map((g) => g.enrollmentGroupId));
    assert.ok(pages < 10, 'paging ends');
  }
  assert.deepEqual(seen.sort(), [groupId, 'sdk-group-2']);
  assert.equal(pages, 2, 'paged by 1');

  await assert.rejects(service.deleteEnrollmentGroup('sdk-group-2', 'AAAAAAAAAAA='), (err) => statusOf(err) === 412);
  await service.deleteEnrollmentGroup('sdk-group-2', other.etag);
  await assert.rejects(service.getEnrollmentGroup('sdk-group-2'), (err) => statusOf(err) === 404);
});

test('device over HTTP with X.509: registers through its enrollment group with its chain', async () => {
  const result = await register(groupDev, 'GROUP_CHAIN', 'GROUP_LEAF_KEY');
  assert.equal(result.registrationId, groupDev);
  assert.equal(result.deviceId, groupDev);
  assert.ok(result.assignedHub, JSON.stringify(result));

  const states = service.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, groupId, 10);
  const page = await states.next();
  assert.deepEqual(page.responseBody.map((s) => s.registrationId), [groupDev], 'only the group\'s devices');

  // A disabled group assigns nothing.
  const group = (await service.getEnrollmentGroup(groupId)).responseBody;
  group.provisioningStatus = 'disabled';
  await service.createOrUpdateEnrollmentGroup(group);
  await assert.rejects(register(groupDev, 'GROUP_CHAIN', 'GROUP_LEAF_KEY'), (err) => {
    assert.equal(err.result && err.result.status, 'disabled', String(err));
    return true;
  });
});

// Independent clients of the Kaspi QR API, written the way the public wrappers write their
// requests (Go: HolySxn/KaspiQR-Wrapper, RomanBronevik/kaspi-qr, thedakeen/kaspi-api-wrapper;
// PHP: burcev-alex/kaspi-qr-sdk; a Go mock's habits), with Node's own http and https: no
// KaspiKit code. The r3 client loads the sandbox's client.p12 through OpenSSL, as ROM loads
// its PFX. Prints one JSON object of what each client saw.
//
// Environment: QR_HTTP (the sandbox, r1 over HTTP), QR_TLS (a TLS port), QR_CERTS (the
// certificates directory), QR_P12_PASSWORD, QR_API_KEY.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';

const httpBase = process.env.QR_HTTP;
const tlsBase = process.env.QR_TLS;
const certs = process.env.QR_CERTS;
const apiKey = process.env.QR_API_KEY;
const agent = new https.Agent({
  pfx: fs.readFileSync(`${certs}/client.p12`),
  passphrase: process.env.QR_P12_PASSWORD,
  ca: fs.readFileSync(`${certs}/ca.pem`),
});

function call(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const lib = target.protocol === 'https:' ? https : http;
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const request = lib.request(target, {
      method,
      agent: target.protocol === 'https:' ? agent : undefined,
      headers: { 'Content-Type': 'application/json', ...headers, ...(data ? { 'Content-Length': Buffer.byteLength(data) } : {}) },
    }, (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: response.statusCode, json, text });
      });
    });
    request.on('error', reject);
    if (data) request.write(data);
    request.end();
  });
}

const out = {};

// HOL (Go, r1): Api-Key, X-Request-ID as a UUID, Accept, lowercase keys in register.
{
  const headers = { 'Api-Key': apiKey, 'X-Request-ID': randomUUID(), Accept: 'application/json' };
  const register = await call('POST', `${httpBase}/r1/v01/device/register`, { deviceId: 'hol-pos-1', tradePointId: 19 }, headers);
  const token = register.json?.Data?.DeviceToken;
  const created = await call('POST', `${httpBase}/r1/v01/qr/create`, '{"DeviceToken":"' + token + '","Amount":200.00,"ExternalId":"hol-1"}', headers);
  const id = created.json?.Data?.QrPaymentId;
  const status = await call('GET', `${httpBase}/r1/v01/payment/status/${id}`, undefined, headers);
  out.hol = { register: register.json?.StatusCode, token, qrToken: created.json?.Data?.QrToken, id, status: status.json?.Data?.Status };
}

// BUR (PHP): Api-Key on every scheme, test endpoints with qrPaymentId as a string, trailing
// slashes as CVT uses them in production.
{
  const headers = { 'Api-Key': apiKey, 'X-Request-ID': randomUUID().replace(/-/g, '') };
  const register = await call('POST', `${httpBase}/r1/v01/device/register/`, { DeviceId: 'bur-pos-1', TradePointId: 19 }, headers);
  const token = register.json?.Data?.DeviceToken;
  const link = await call('POST', `${httpBase}/r1/v01/qr/create-link/`, { DeviceToken: token, Amount: 150, ExternalId: 'bur-1' }, headers);
  const id = link.json?.Data?.PaymentId;
  const scan = await call('POST', `${httpBase}/r1/v01/test/payment/scan`, { qrPaymentId: String(id) }, headers);
  const confirm = await call('POST', `${httpBase}/r1/v01/test/payment/confirm`, { qrPaymentId: String(id) }, headers);
  const status = await call('GET', `${httpBase}/r1/v01/payment/status/${id}/`, undefined, headers);
  out.bur = {
    link: link.json?.Data?.PaymentLink, timeout: link.json?.Data?.PaymentBehaviorOptions?.LinkActivationWaitTimeout,
    scan: scan.json?.StatusCode, confirm: confirm.json?.StatusCode, status: status.json?.Data?.Status,
  };
}

// ROM (Go, r3 with a PFX): TradePointId as a string, a trailing slash, -1601 for an unknown id,
// -99000011 for refunding a purchase that is not Processed, then a refund of a paid one.
{
  const bin = '123456789012';
  const register = await call('POST', `${tlsBase}/r3/v01/device/register/`, { DeviceId: 'rom-pos-1', TradePointId: '19', OrganizationBin: bin });
  const token = register.json?.Data?.DeviceToken;
  const unknown = await call('GET', `${tlsBase}/r3/v01/payment/status/123456789`);
  const created = await call('POST', `${tlsBase}/r3/v01/qr/create`, { DeviceToken: token, Amount: 100, ExternalId: 'rom-1', OrganizationBin: bin });
  const id = created.json?.Data?.QrPaymentId;
  const early = await call('POST', `${tlsBase}/r3/v01/payment/return`, { DeviceToken: token, QrPaymentId: id, Amount: 100, OrganizationBin: bin });
  // A Go mock (chaospay) sends qrPaymentId as a number.
  await call('POST', `${tlsBase}/r3/v01/test/payment/scan`, { qrPaymentId: id });
  await call('POST', `${tlsBase}/r3/v01/test/payment/confirm`, { qrPaymentId: id });
  const refund = await call('POST', `${tlsBase}/r3/v01/payment/return`, { DeviceToken: token, QrPaymentId: id, Amount: 40, OrganizationBin: bin });
  const details = await call('GET', `${tlsBase}/r3/v01/payment/details?QrPaymentId=${id}&DeviceToken=${token}`);
  const tradepoints = await call('GET', `${tlsBase}/r3/v01/partner/tradepoints/${bin}`);
  out.rom = {
    register: register.json?.StatusCode, unknown: unknown.json?.StatusCode, early: early.json?.StatusCode,
    refund: refund.json?.Data?.ReturnOperationId, available: details.json?.Data?.AvailableReturnAmount,
    tradepoints: (tradepoints.json?.Data ?? []).map((p) => p.TradePointId),
  };
  // DAK (Go): v02 status, and remote/create with DeviceToken as an int64 (after the guide's table).
  const v02 = await call('GET', `${tlsBase}/r3/v02/payment/status/${id}`);
  const remote = await call('POST', `${tlsBase}/r3/v01/remote/create`, { OrganizationBin: bin, Amount: 100, PhoneNumber: '87077777777', DeviceToken: 321 });
  const info = await call('GET', `${tlsBase}/r3/v01/remote/client-info?phoneNumber=87077777777&deviceToken=${token}`);
  out.dak = { v02: v02.json?.Data, remoteWithNumber: remote.json?.StatusCode, clientName: info.json?.Data?.ClientName };
}

// Without a certificate, r3 answers -10000 in the body, over a TLS connection it accepted.
{
  const bare = new https.Agent({ ca: fs.readFileSync(`${certs}/ca.pem`) });
  const response = await new Promise((resolve, reject) => {
    https.get(`${tlsBase}/r3/v01/health/ping`, { agent: bare }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
    }).on('error', reject);
  });
  out.noCertificate = { status: response.status, code: response.json.StatusCode };
}

console.log(JSON.stringify(out));

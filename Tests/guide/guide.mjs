// The Node.js snippets of the integration guide ("Kaspi Pay API Integration Guide for Web and
// Mobile Apps"), run against a Kaspi Pay server.
// The snippets are copied as written; only their HTTP library differs: axios is replaced by
// the small fetch-based stand-in below (npm is out of reach here), and BASE_URL comes from
// the environment so that it can point at a local sandbox.
//
// Run: KASPI_BASE_URL=http://127.0.0.1:8181 KASPI_TRADE_POINT_ID=... KASPI_API_KEY=... WEBHOOK_PORT=... node guide.mjs
// Prints one JSON line with what each step saw.
import crypto from 'node:crypto';
import http from 'node:http';

// --- axios stand-in: the calls the guide makes (post, get, headers, response.data) ---------
const axios = {
  async post(url, body, config = {}) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(config.headers || {}) },
      body: JSON.stringify(body),
    });
    return toAxios(response);
  },
  async get(url, config = {}) {
    return toAxios(await fetch(url, { headers: config.headers || {} }));
  },
};
async function toAxios(response) {
  const data = await response.json();
  if (response.status >= 400) {
    const error = new Error(`Request failed with status code ${response.status}`);
    error.response = { status: response.status, data };
    throw error;
  }
  return { status: response.status, data };
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Step 1: Create a Payment Order (the guide, verbatim) ------------------------------------
const KASPI_TRADE_POINT_ID = process.env.KASPI_TRADE_POINT_ID;
const KASPI_API_KEY = process.env.KASPI_API_KEY;
const BASE_URL = process.env.KASPI_BASE_URL || 'https://pay.kaspi.kz'; // or testpay.kaspi.kz
async function createKaspiOrder(orderData) {
const payload = {
amount: orderData.amount, // In tenge, integer (e.g. 5000 = 5000 KZT)
orderId: orderData.orderId, // Your unique order ID
returnUrl: orderData.returnUrl, // Redirect after payment
failUrl: orderData.failUrl, // Redirect on failure
tradePointId: KASPI_TRADE_POINT_ID,
description: orderData.description,
};
// Generate signature
const signatureString = `${payload.amount}${payload.orderId}${KASPI_API_KEY}`;
const signature = crypto
.createHash('sha256')
.update(signatureString)
.digest('hex');
const response = await axios.post(
`${BASE_URL}/api/v1/orders/create`,
{ ...payload, signature },
{
headers: {
'Content-Type': 'application/json',
'Authorization': `Bearer ${KASPI_API_KEY}`,
},
}
);
return response.data; // Contains { paymentUrl, orderId }
}

// --- Step 2: Handle the Webhook (the handler's body, verbatim, on node:http) ---------------
const db = { orders: { updates: [], async update(query) { this.updates.push(query); } } };
const fulfilled = [];
async function fulfillOrder(orderId) { fulfilled.push(orderId); }
const webhookServer = http.createServer((req, rawRes) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    req.body = Buffer.concat(chunks);
    const res = { status(code) { rawRes.statusCode = code; return this; }, json(o) { rawRes.setHeader('Content-Type', 'application/json'); rawRes.end(JSON.stringify(o)); } };
const payload = JSON.parse(req.body);
// Verify signature
const expectedSignature = crypto
.createHash('sha256')
.update(`${payload.orderId}${payload.amount}${KASPI_API_KEY}`)
.digest('hex');
if (payload.signature !== expectedSignature) {
return res.status(400).json({ error: 'Invalid signature' });
}
switch (payload.status) {
case 'APPROVED':
await db.orders.update({
where: { kaspiOrderId: payload.orderId },
data: {
status: 'paid',
paidAt: new Date(),
kaspiTransactionId: payload.transactionId,
}
});
await fulfillOrder(payload.orderId);
break;
case 'DECLINED':
case 'CANCELLED':
await db.orders.update({
where: { kaspiOrderId: payload.orderId },
data: { status: 'cancelled' }
});
break;
}
// Always respond 200 to acknowledge receipt
res.status(200).json({ received: true });
  });
});

// --- Step 3: Verify Payment Status (verbatim) ------------------------------------------------
async function checkKaspiOrderStatus(kaspiOrderId) {
const response = await axios.get(
`${BASE_URL}/api/v1/orders/${kaspiOrderId}/status`,
{
headers: { 'Authorization': `Bearer ${KASPI_API_KEY}` }
}
);
return response.data.status; // 'APPROVED' | 'PENDING' | 'DECLINED' | 'CANCELLED'
}

// --- QR Code Payment Flow (verbatim; generateSignature is the guide's create signature) -----
function generateSignature(amount, orderId) {
  return crypto.createHash('sha256').update(`${amount}${orderId}${KASPI_API_KEY}`).digest('hex');
}
async function generateKaspiQR(amount, orderId) {
const response = await axios.post(`${BASE_URL}/api/v1/qr/create`, {
amount,
orderId,
tradePointId: KASPI_TRADE_POINT_ID,
signature: generateSignature(amount, orderId),
});
// response.data.qrCode - base64 encoded QR image
// response.data.qrToken - token to check payment status
return response.data;
}
// Poll for QR payment status (user hasn't confirmed yet)
async function pollQRStatus(qrToken, maxAttempts = 60) {
for (let i = 0; i < maxAttempts; i++) {
await sleep(3000); // Poll every 3 seconds
const status = await axios.get(`${BASE_URL}/api/v1/qr/${qrToken}/status`, {
headers: { Authorization: `Bearer ${KASPI_API_KEY}` }
});
if (status.data.status === 'APPROVED') return 'paid';
if (status.data.status === 'DECLINED') return 'failed';
// 'PENDING' - continue polling
}
return 'timeout';
}

// --- The walk through the guide -------------------------------------------------------------
const result = {};
const orderId = `${Date.now()}`;
// The merchant's webhook endpoint listens on WEBHOOK_PORT, which the sandbox was told.
await new Promise((resolve) => webhookServer.listen(Number(process.env.WEBHOOK_PORT || 0), '127.0.0.1', resolve));
{
  const kaspiOrder = await createKaspiOrder({
    amount: Math.round(5000),
    orderId: `ORDER-${orderId}`,
    returnUrl: `https://yoursite.kz/payment/success?orderId=${orderId}`,
    failUrl: `https://yoursite.kz/payment/fail?orderId=${orderId}`,
    description: `Order #${orderId}`,
  });
  result.paymentUrl = kaspiOrder.paymentUrl;
  result.orderId = kaspiOrder.orderId;
  result.statusBefore = await checkKaspiOrderStatus(kaspiOrder.orderId);
  // The payer presses Pay on the payment page.
  const paid = await fetch(kaspiOrder.paymentUrl, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'action=pay',
  });
  result.redirect = paid.headers.get('location');
  result.statusAfter = await checkKaspiOrderStatus(kaspiOrder.orderId);

  const qr = await generateKaspiQR(1500, `QR-${orderId}`);
  result.qrIsPNG = Buffer.from(qr.qrCode, 'base64').subarray(0, 4).toString('hex') === '89504e47';
  await fetch(`${BASE_URL}/sandbox/orders/QR-${orderId}/approve`, { method: 'POST' });
  result.qrOutcome = await pollQRStatus(qr.qrToken, 2);

  try {
    await createKaspiOrder({ amount: 5000, orderId: `ORDER-${orderId}`, returnUrl: 'https://yoursite.kz/s', failUrl: 'https://yoursite.kz/f' });
  } catch (error) {
    result.duplicate = error.response.data.code;
  }
  // Wait for the sandbox's webhooks (the order and the QR were approved).
  for (let i = 0; i < 250 && fulfilled.length < 2; i++) await sleep(20);
  result.fulfilled = fulfilled;
  result.updates = db.orders.updates.map((u) => ({ orderId: u.where.kaspiOrderId, status: u.data.status, transactionId: u.data.kaspiTransactionId }));
  console.log(JSON.stringify(result));
  // Exit at once rather than wait for the sandbox's idle keep-alive connections to close.
  webhookServer.close();
  process.exit(0);
}

"""A comparison peer, NOT part of KaspiKit.

The integration guide's checkout and webhook handler, written the way its Node.js snippets
suggest, in Python with FastAPI, uvicorn and sqlite3. `scripts/bench` runs it beside the
gateway so that the gateway's figures have a familiar point of reference.

Kept honest in the peer's favour where the guide is silent: the database is SQLite in WAL
mode with synchronous=FULL (the gateway's durability), uvicorn runs with uvloop and
httptools, and access logging is off. It does less than the gateway on purpose: no audit
event, no outbox row, no amount check, no state machine, just what the snippets do.

Run:   KASPI_API_KEY=... KASPI_TRADE_POINT_ID=... KASPI_BASE_URL=http://127.0.0.1:8181 \
       PEER_DB=peer.sqlite python3 -m uvicorn app:app --port 8383
Seed:  python3 app.py seed peer.sqlite ORDERS   (orders bench-0 ... pending, 5000 tenge)
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    kaspi_order_id TEXT PRIMARY KEY,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    payment_url TEXT,
    paid_at REAL,
    kaspi_transaction_id TEXT
)
"""


def connect(path):
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(SCHEMA)
    db.commit()
    return db


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "seed":
    db = connect(sys.argv[2])
    db.executemany(
        "INSERT INTO orders (kaspi_order_id, amount, status) VALUES (?, 5000, 'pending')",
        ((f"bench-{i}",) for i in range(int(sys.argv[3]))),
    )
    db.commit()
    sys.exit(0)

import httpx  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

KASPI_TRADE_POINT_ID = os.environ["KASPI_TRADE_POINT_ID"]
KASPI_API_KEY = os.environ["KASPI_API_KEY"]
BASE_URL = os.environ.get("KASPI_BASE_URL", "https://pay.kaspi.kz")
db = connect(os.environ.get("PEER_DB", "peer.sqlite"))
client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
app = FastAPI()


async def create_kaspi_order(order):
    payload = {
        "amount": order["amount"],
        "orderId": order["orderId"],
        "returnUrl": order["returnUrl"],
        "failUrl": order["failUrl"],
        "tradePointId": KASPI_TRADE_POINT_ID,
        "description": order["description"],
    }
    signature = hashlib.sha256(f"{payload['amount']}{payload['orderId']}{KASPI_API_KEY}".encode()).hexdigest()
    response = await client.post(
        f"{BASE_URL}/api/v1/orders/create",
        json={**payload, "signature": signature},
        headers={"Authorization": f"Bearer {KASPI_API_KEY}"},
    )
    response.raise_for_status()
    return response.json()


@app.post("/checkout")
async def checkout(request: Request):
    body = await request.json()
    order_id = body["orderId"]
    kaspi_order = await create_kaspi_order({
        "amount": round(body["cartTotal"]),
        "orderId": f"ORDER-{order_id}",
        "returnUrl": f"https://yoursite.kz/payment/success?orderId={order_id}",
        "failUrl": f"https://yoursite.kz/payment/fail?orderId={order_id}",
        "description": f"Order #{order_id}",
    })
    # The guide's snippet stores nothing; its webhook handler updates db.orders, so the
    # order must be stored somewhere: here.
    db.execute(
        "INSERT INTO orders (kaspi_order_id, amount, status, payment_url) VALUES (?, ?, 'pending', ?)",
        (f"ORDER-{order_id}", round(body["cartTotal"]), kaspi_order["paymentUrl"]),
    )
    db.commit()
    return {"paymentUrl": kaspi_order["paymentUrl"]}


@app.post("/webhooks/kaspi")
async def webhook(request: Request):
    payload = json.loads(await request.body())
    expected = hashlib.sha256(f"{payload['orderId']}{payload['amount']}{KASPI_API_KEY}".encode()).hexdigest()
    if payload.get("signature") != expected:
        return JSONResponse({"error": "Invalid signature"}, status_code=400)
    status = payload.get("status")
    if status == "APPROVED":
        db.execute(
            "UPDATE orders SET status = 'paid', paid_at = ?, kaspi_transaction_id = ? WHERE kaspi_order_id = ?",
            (time.time(), payload.get("transactionId"), payload["orderId"]),
        )
        db.commit()
    elif status in ("DECLINED", "CANCELLED"):
        db.execute("UPDATE orders SET status = 'cancelled' WHERE kaspi_order_id = ?", (payload["orderId"],))
        db.commit()
    return {"received": True}


@app.get("/health")
async def health():
    return {"status": "ok"}

import Foundation

/// The gateway's schema, as numbered migrations for each database. A migration is applied
/// once, in order, in its own transaction, and recorded in `schema_migrations`.
enum Migrations {
    enum Dialect { case sqlite, postgres }

    /// The newest version this program knows.
    static var latest: Int { all(.sqlite).map(\.version).max() ?? 0 }

    static func all(_ dialect: Dialect) -> [(version: Int, statements: [String])] {
        let serial = dialect == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY"
        let integer = dialect == .sqlite ? "INTEGER" : "BIGINT"
        return [
            (
                1,
                [
                    """
                    CREATE TABLE orders (
                        id TEXT PRIMARY KEY,
                        provider TEXT NOT NULL,
                        provider_order_id TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        amount \(integer) NOT NULL CHECK (amount > 0),
                        description TEXT,
                        merchant_reference TEXT,
                        metadata TEXT,
                        mobile_return_url TEXT,
                        state TEXT NOT NULL,
                        refunded_amount \(integer) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
                        transaction_id TEXT,
                        payment_url TEXT,
                        qr_token TEXT,
                        payment_link_id TEXT,
                        needs_review INTEGER NOT NULL DEFAULT 0,
                        created_at \(integer) NOT NULL,
                        updated_at \(integer) NOT NULL,
                        next_poll_at \(integer),
                        poll_attempts INTEGER NOT NULL DEFAULT 0,
                        lease_owner TEXT,
                        lease_until \(integer),
                        version \(integer) NOT NULL,
                        UNIQUE (provider, provider_order_id)
                    )
                    """,
                    "CREATE INDEX orders_created ON orders (created_at DESC, id DESC)",
                    "CREATE INDEX orders_poll ON orders (next_poll_at) WHERE next_poll_at IS NOT NULL",
                    "CREATE INDEX orders_reference ON orders (merchant_reference)",
                    """
                    CREATE TABLE order_events (
                        id \(serial),
                        order_id TEXT NOT NULL REFERENCES orders (id),
                        at \(integer) NOT NULL,
                        kind TEXT NOT NULL,
                        from_state TEXT,
                        to_state TEXT,
                        detail TEXT NOT NULL
                    )
                    """,
                    "CREATE INDEX order_events_order ON order_events (order_id, id)",
                    """
                    CREATE TABLE outbox (
                        id TEXT PRIMARY KEY,
                        type TEXT NOT NULL,
                        order_id TEXT NOT NULL REFERENCES orders (id),
                        payload TEXT NOT NULL,
                        created_at \(integer) NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at \(integer) NOT NULL,
                        last_status INTEGER,
                        delivered_at \(integer),
                        lease_owner TEXT,
                        lease_until \(integer)
                    )
                    """,
                    "CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending'",
                    "CREATE INDEX outbox_order ON outbox (order_id, created_at)",
                    """
                    CREATE TABLE delivery_attempts (
                        id \(serial),
                        message_id TEXT NOT NULL REFERENCES outbox (id),
                        at \(integer) NOT NULL,
                        status_code INTEGER,
                        latency_ms INTEGER NOT NULL,
                        error TEXT,
                        manual INTEGER NOT NULL DEFAULT 0
                    )
                    """,
                    "CREATE INDEX delivery_attempts_message ON delivery_attempts (message_id, id)",
                    """
                    CREATE TABLE refunds (
                        id TEXT PRIMARY KEY,
                        order_id TEXT NOT NULL REFERENCES orders (id),
                        amount \(integer) NOT NULL CHECK (amount > 0),
                        created_at \(integer) NOT NULL
                    )
                    """,
                    """
                    CREATE TABLE idempotency_keys (
                        scope TEXT NOT NULL,
                        key TEXT NOT NULL,
                        request_hash TEXT NOT NULL,
                        status INTEGER NOT NULL,
                        body TEXT NOT NULL,
                        created_at \(integer) NOT NULL,
                        PRIMARY KEY (scope, key)
                    )
                    """,
                ]
            ),
            (
                2,
                [
                    """
                    CREATE TABLE payment_links (
                        id TEXT PRIMARY KEY,
                        amount \(integer) NOT NULL CHECK (amount > 0),
                        description TEXT,
                        merchant_reference TEXT,
                        expires_at \(integer),
                        created_at \(integer) NOT NULL,
                        order_id TEXT REFERENCES orders (id)
                    )
                    """
                ]
            ),
            (
                3,
                [
                    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                    "CREATE INDEX payment_links_created ON payment_links (created_at DESC, id DESC)",
                ]
            ),
            (
                4,
                [
                    // Idempotency keys are reserved with the work they guard, then hold the answer.
                    "ALTER TABLE idempotency_keys ADD COLUMN state TEXT NOT NULL DEFAULT 'done'",
                    "ALTER TABLE idempotency_keys ADD COLUMN owner TEXT",
                    "ALTER TABLE idempotency_keys ADD COLUMN resource TEXT",
                    "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
                ]
            ),
            (
                5,
                [
                    // A restarted instance finds its own leases at once.
                    "CREATE INDEX orders_lease ON orders (lease_owner) WHERE lease_owner IS NOT NULL",
                    "CREATE INDEX outbox_lease ON outbox (lease_owner) WHERE lease_owner IS NOT NULL",
                ]
            ),
            (
                6,
                [
                    // Refunds carry their outcome; refunds from before were confirmed or flagged.
                    "ALTER TABLE refunds ADD COLUMN status TEXT NOT NULL DEFAULT 'succeeded'",
                    "ALTER TABLE refunds ADD COLUMN detail TEXT",
                    "ALTER TABLE refunds ADD COLUMN updated_at \(integer)",
                    "CREATE INDEX refunds_order ON refunds (order_id, created_at)",
                    "CREATE INDEX refunds_unresolved ON refunds (created_at) WHERE status IN ('pending', 'unknown')",
                    // The sliding window of calls to Kaspi, shared by every instance.
                    "CREATE TABLE rate_slots (key TEXT NOT NULL, at \(integer) NOT NULL)",
                    "CREATE INDEX rate_slots_key ON rate_slots (key, at)",
                ]
            ),
            (
                7,
                [
                    // What a provider needs to follow an order (the Kaspi QR API's payment id,
                    // device, interval and deadlines), and the devices registered with it.
                    "ALTER TABLE orders ADD COLUMN provider_state TEXT",
                    // The provider's own id once it gives one (the Kaspi QR API's payment id).
                    "ALTER TABLE orders ADD COLUMN provider_payment_id TEXT",
                    "CREATE INDEX orders_provider_payment ON orders (provider, provider_payment_id) WHERE provider_payment_id IS NOT NULL",
                    """
                    CREATE TABLE provider_devices (
                        id TEXT PRIMARY KEY,
                        provider TEXT NOT NULL,
                        organization_bin TEXT,
                        trade_point_id \(integer) NOT NULL,
                        device_id TEXT NOT NULL,
                        token TEXT NOT NULL,
                        is_default INTEGER NOT NULL DEFAULT 0,
                        reference_prefix TEXT,
                        created_at \(integer) NOT NULL,
                        deleted_at \(integer)
                    )
                    """,
                    "CREATE INDEX provider_devices_live ON provider_devices (provider, created_at) WHERE deleted_at IS NULL",
                ]
            ),
            (
                8,
                [
                    // When the last answered poll asked: a payer's scan happened after it.
                    "ALTER TABLE orders ADD COLUMN last_polled_at \(integer)"
                ]
            ),
            (
                9,
                [
                    // Every event in the order written: `kaspi listen` follows it with a cursor,
                    // the dashboard lists the newest.
                    "CREATE INDEX outbox_created ON outbox (created_at, id)"
                ]
            ),
            (
                10,
                [
                    // The payer's language, when the checkout said it.
                    "ALTER TABLE orders ADD COLUMN locale TEXT"
                ]
            ),
        ]
    }
}

let refundColumns = "id, order_id, amount, status, detail, created_at, updated_at"

let linkColumns = "id, amount, description, merchant_reference, expires_at, created_at, order_id"

/// The columns of `orders` an insert writes, in the order every statement lists them.
let orderColumns = """
    id, provider, provider_order_id, kind, amount, description, merchant_reference, metadata, mobile_return_url, \
    state, refunded_amount, transaction_id, payment_url, qr_token, payment_link_id, needs_review, created_at, \
    updated_at, next_poll_at, poll_attempts, version, provider_state, provider_payment_id, locale
    """

/// How many columns `orderColumns` lists: an insert's placeholders.
let orderColumnCount = 24

/// The columns of `orders` every SELECT and RETURNING lists: the inserted ones, then those
/// only the poll's schedule writes.
let orderReadColumns = orderColumns + ", last_polled_at"

let deviceColumns = "id, provider, organization_bin, trade_point_id, device_id, token, is_default, reference_prefix, created_at, deleted_at"

let outboxColumns = "id, type, order_id, payload, created_at, state, attempts, next_attempt_at, last_status, delivered_at"

extension Date {
    /// Milliseconds since 1970, as stored.
    var ms: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(ms: Int64) { self.init(timeIntervalSince1970: Double(ms) / 1000) }
}

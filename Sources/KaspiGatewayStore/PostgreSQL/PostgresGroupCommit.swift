import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Group commit for PostgreSQL's webhook path (``PostgresGatewayStore/update(provider:providerOrderID:_:)``).
///
/// Concurrent status reports share two round trips and one commit: the jobs waiting when a
/// batch starts are looked up with one statement over `unnest` arrays, each job's `decide`
/// runs on its order, and one more statement writes every change whose order still has the
/// version read: it updates those orders, inserts their audit events and outbox rows, and
/// returns the ids it changed. That statement is its own transaction, so a caller hears of
/// success only after the commit that holds its change. A job whose order changed in between,
/// a refund's change, and a second job for an order already in the batch go the locked path
/// one by one; when the batch's write fails, every job of it does (an order that the failed
/// write did change is then seen by its version, so nothing is applied twice).
final class PostgresGroupCommit: Sendable {
    typealias Decide = @Sendable (GatewayOrder) throws -> OrderChange?
    typealias Outcome = (before: GatewayOrder, after: GatewayOrder)

    struct Job: Sendable {
        let provider: String
        let providerOrderID: String
        let decide: Decide
        /// The locked path, for a job that cannot join a batch's write.
        let single: @Sendable (GatewayOrder, @escaping Decide) async throws -> GatewayOrder
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct Queue {
        var jobs: [Job] = []
        var draining = 0
    }

    private let client: PostgresClient
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let statistics = Mutex((batches: 0, jobs: 0))
    /// The most jobs one batch holds.
    let maxBatch: Int
    /// Batches in flight at once: a second batch forms while the first waits for its commit.
    let maxConcurrent: Int

    init(client: PostgresClient, logger: Logger, maxBatch: Int = 256, maxConcurrent: Int = 2) {
        self.client = client
        self.logger = logger
        self.maxBatch = max(1, maxBatch)
        self.maxConcurrent = max(1, maxConcurrent)
    }

    /// How many batches have carried how many jobs.
    var batchStatistics: (batches: Int, jobs: Int) { statistics.withLock { ($0.batches, $0.jobs) } }

    /// Looks up the order, decides and writes, together with the jobs waiting at the time.
    /// `single` is the locked path (``PostgresGatewayStore/update(from:_:)``), for a job that
    /// cannot join the batch's write.
    func update(
        provider: String, providerOrderID: String, _ decide: @escaping Decide,
        single: @escaping @Sendable (GatewayOrder, @escaping Decide) async throws -> GatewayOrder
    ) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let job = Job(provider: provider, providerOrderID: providerOrderID, decide: decide, single: single, continuation: continuation)
            let start = queue.withLock { state -> Bool in
                state.jobs.append(job)
                guard state.draining < maxConcurrent else { return false }
                state.draining += 1
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = queue.withLock { state -> [Job] in
                guard !state.jobs.isEmpty else {
                    state.draining -= 1
                    return []
                }
                return state.jobs.removeFirst(upTo: maxBatch)
            }
            if batch.isEmpty { return }
            statistics.withLock {
                $0.batches += 1
                $0.jobs += batch.count
            }
            await run(batch)
        }
    }

    /// One batch: a lookup, the decisions, one write; then the stragglers one by one.
    private func run(_ batch: [Job]) async {
        let found: [String: GatewayOrder]
        do {
            found = try await lookup(batch)
        } catch {
            for job in batch { job.continuation.resume(throwing: error) }
            return
        }
        var written: [(job: Job, before: GatewayOrder, change: OrderChange)] = []
        var alone: [(job: Job, before: GatewayOrder)] = []
        var inBatch = Set<String>()
        for job in batch {
            guard let order = found[Self.key(job.provider, job.providerOrderID)] else {
                job.continuation.resume(throwing: StoreError.orderNotFound(job.providerOrderID))
                continue
            }
            guard inBatch.insert(order.id).inserted else {
                alone.append((job, order))
                continue
            }
            let change: OrderChange?
            do {
                change = try job.decide(order)
            } catch {
                job.continuation.resume(throwing: error)
                continue
            }
            guard let change else {
                job.continuation.resume(returning: (order, order))
                continue
            }
            if change.refund != nil || change.answer != nil {
                alone.append((job, order))
            } else {
                written.append((job, order, change))
            }
        }
        if !written.isEmpty {
            do {
                // In id order, so that two instances' batches lock shared orders in the same
                // order (a deadlock would fail both batches back to the locked path).
                let order = written.indices.sorted { written[$0].change.order.id < written[$1].change.order.id }
                let changed = try await write(order.map { (written[$0].change, written[$0].before.version) })
                for entry in written {
                    if changed.contains(entry.change.order.id) {
                        entry.job.continuation.resume(returning: (entry.before, entry.change.order))
                    } else {
                        // Someone changed the order since the lookup: the locked path decides again.
                        alone.append((entry.job, entry.before))
                    }
                }
            } catch {
                logger.warning(
                    "A batch of status reports could not be written together; each is retried alone",
                    metadata: ["jobs": "\(written.count)", "error": "\(String(reflecting: error).prefix(200))"])
                alone += written.map { ($0.job, $0.before) }
            }
        }
        guard !alone.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for (job, before) in alone {
                group.addTask {
                    do {
                        job.continuation.resume(returning: (before, try await job.single(before, job.decide)))
                    } catch {
                        job.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    private static func key(_ provider: String, _ providerOrderID: String) -> String { "\(provider)\u{0}\(providerOrderID)" }

    /// Every job's order in one statement.
    private func lookup(_ batch: [Job]) async throws -> [String: GatewayOrder] {
        let statement = LookupStatement(providers: batch.map(\.provider), providerOrderIDs: batch.map(\.providerOrderID))
        var found: [String: GatewayOrder] = [:]
        do {
            for try await row in try await client.execute(statement, logger: logger) {
                let order = try RowDecoding.order(row)
                found[Self.key(order.provider, order.providerOrderID)] = order
            }
        } catch {
            throw PostgresGatewayStore.mapError(error)
        }
        return found
    }

    /// Writes the changes whose orders still have the versions read, with their events and
    /// outbox rows, in one statement (one transaction). Returns the ids of the orders changed.
    func write(_ changes: [(change: OrderChange, expectedVersion: Int)]) async throws -> Set<String> {
        let statement = WriteStatement(changes)
        var changed = Set<String>()
        do {
            for try await id in try await client.execute(statement, logger: logger) { changed.insert(id) }
        } catch {
            throw PostgresGatewayStore.mapError(error)
        }
        return changed
    }

    /// Orders by (provider, provider order id), for a batch.
    struct LookupStatement: PostgresPreparedStatement {
        static let name = "kaspikit_batch_lookup"
        static let sql = """
            SELECT \(orderReadColumns.split(separator: ",").map { "o.\($0.trimmingCharacters(in: .whitespacesAndNewlines))" }.joined(separator: ", "))
            FROM unnest($1::text[], $2::text[]) AS k(kp, kid) JOIN orders o ON o.provider = k.kp AND o.provider_order_id = k.kid
            """
        static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray]
        typealias Row = PostgresRandomAccessRow
        var providers: [String]
        var providerOrderIDs: [String]
        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(providers)
            bindings.append(providerOrderIDs)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRandomAccessRow { row.makeRandomAccess() }
    }

    /// A batch's changes, as columns.
    struct WriteStatement: PostgresPreparedStatement {
        static let name = "kaspikit_batch_write"
        static let sql = """
            WITH input AS (
                SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::int8[],
                    $9::int8[], $10::int4[], $11::int8[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::int8[])
                AS i(state, refunded_amount, transaction_id, payment_url, qr_token, payment_link_id, needs_review, updated_at,
                    next_poll_at, poll_attempts, version, description, metadata, provider_state, provider_payment_id, id, expected_version)
            ), changed AS (
                UPDATE orders SET state = i.state, refunded_amount = i.refunded_amount, transaction_id = i.transaction_id,
                    payment_url = i.payment_url, qr_token = i.qr_token, payment_link_id = i.payment_link_id, needs_review = i.needs_review,
                    updated_at = i.updated_at, next_poll_at = i.next_poll_at, poll_attempts = i.poll_attempts, version = i.version,
                    description = i.description, metadata = i.metadata, provider_state = i.provider_state,
                    provider_payment_id = i.provider_payment_id
                FROM input i WHERE orders.id = i.id AND orders.version = i.expected_version
                RETURNING orders.id
            ), events AS (
                INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail)
                SELECT e.order_id, e.at, e.kind, e.from_state, e.to_state, e.detail
                FROM unnest($18::text[], $19::int8[], $20::text[], $21::text[], $22::text[], $23::text[]) WITH ORDINALITY
                    AS e(order_id, at, kind, from_state, to_state, detail, n)
                WHERE e.order_id IN (SELECT id FROM changed) ORDER BY e.n
            ), messages AS (
                INSERT INTO outbox (\(outboxColumns))
                SELECT m.id, m.type, m.order_id, m.payload, m.created_at, m.state, m.attempts, m.next_attempt_at, m.last_status, m.delivered_at
                FROM unnest($24::text[], $25::text[], $26::text[], $27::text[], $28::int8[], $29::text[], $30::int4[], $31::int8[],
                    $32::int4[], $33::int8[])
                    AS m(id, type, order_id, payload, created_at, state, attempts, next_attempt_at, last_status, delivered_at)
                WHERE m.order_id IN (SELECT id FROM changed)
            )
            SELECT id FROM changed
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .textArray, .int8Array, .textArray, .textArray, .textArray, .textArray, .int4Array, .int8Array, .int8Array, .int4Array,
            .int8Array, .textArray, .textArray, .textArray, .textArray, .textArray, .int8Array,
            .textArray, .int8Array, .textArray, .textArray, .textArray, .textArray,
            .textArray, .textArray, .textArray, .textArray, .int8Array, .textArray, .int4Array, .int8Array, .int4Array, .int8Array,
        ]
        typealias Row = String
        let bindings: PostgresBindings

        init(_ changes: [(change: OrderChange, expectedVersion: Int)]) {
            let orders = changes.map(\.change.order)
            let events = changes.flatMap(\.change.events)
            let messages = changes.flatMap(\.change.outbox)
            var b = PostgresBindings(capacity: 33)
            b.append(orders.map(\.state.rawValue))
            b.append(orders.map { Int64($0.refundedAmount) })
            b.append(NullableArray(orders.map(\.transactionID)))
            b.append(NullableArray(orders.map(\.paymentURL)))
            b.append(NullableArray(orders.map(\.qrToken)))
            b.append(NullableArray(orders.map(\.paymentLinkID)))
            b.append(orders.map { Int32($0.needsReview ? 1 : 0) })
            b.append(orders.map(\.updatedAt.ms))
            b.append(NullableArray(orders.map { $0.nextPollAt?.ms }))
            b.append(orders.map { Int32($0.pollAttempts) })
            b.append(orders.map { Int64($0.version) })
            b.append(NullableArray(orders.map(\.description)))
            b.append(NullableArray(orders.map(\.metadata)))
            b.append(NullableArray(orders.map(\.providerState)))
            b.append(NullableArray(orders.map(\.providerPaymentID)))
            b.append(orders.map(\.id))
            b.append(changes.map { Int64($0.expectedVersion) })
            b.append(events.map(\.orderID))
            b.append(events.map(\.at.ms))
            b.append(events.map(\.kind.rawValue))
            b.append(NullableArray(events.map { $0.fromState?.rawValue }))
            b.append(NullableArray(events.map { $0.toState?.rawValue }))
            b.append(events.map(\.detail))
            b.append(messages.map(\.id))
            b.append(messages.map(\.type))
            b.append(messages.map(\.orderID))
            b.append(messages.map(\.payload))
            b.append(messages.map(\.createdAt.ms))
            b.append(messages.map(\.state.rawValue))
            b.append(messages.map { Int32($0.attempts) })
            b.append(messages.map(\.nextAttemptAt.ms))
            b.append(NullableArray(messages.map { $0.lastStatus.map(Int32.init) }))
            b.append(NullableArray(messages.map { $0.deliveredAt?.ms }))
            bindings = b
        }

        func makeBindings() throws -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
    }
}

/// A one-dimensional PostgreSQL array whose elements may be NULL (postgres-nio's arrays
/// cannot hold NULLs), in the binary array format.
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable {
    let elements: [Element?]
    init(_ elements: [Element?]) { self.elements = elements }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Dimensions (0 for an empty array), whether any element is NULL, the element type.
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !elements.isEmpty else { return }
        // The one dimension: its length and its lower bound.
        buffer.writeInteger(Int32(elements.count))
        buffer.writeInteger(1, as: Int32.self)
        for element in elements {
            if let element {
                // Each element: its length in bytes, then its bytes.
                let lengthIndex = buffer.writerIndex
                buffer.writeInteger(0, as: Int32.self)
                let start = buffer.writerIndex
                element.encode(into: &buffer, context: context)
                buffer.setInteger(Int32(buffer.writerIndex - start), at: lengthIndex)
            } else {
                buffer.writeInteger(-1, as: Int32.self)
            }
        }
    }
}

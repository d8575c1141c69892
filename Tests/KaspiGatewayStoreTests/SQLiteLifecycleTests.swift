import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import Testing

@Suite("SQLite store: closing while writes are in flight")
struct SQLiteLifecycleTests {
    @Test("close() waits for the writes in flight; each write that succeeded is on disk, and later ones are refused")
    func closeWaitsForWritesInFlight() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-close-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try await SQLiteGatewayStore.open(path: path)
        _ = try await store.migrate()
        let orders = (0..<300).map { makeOrder("close-\($0)") }
        // Writes racing with close(): none may hang, and none may report success without
        // being stored.
        let succeeded = await withTaskGroup(of: String?.self) { group in
            for order in orders {
                group.addTask { (try? await store.insert(order, reserving: nil)) == nil ? nil : order.id }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(5))
                try? await store.close()
                return nil
            }
            var ids: [String] = []
            for await id in group { if let id { ids.append(id) } }
            return ids
        }
        await #expect(throws: StoreError.self) { try await store.insert(makeOrder("after-close"), reserving: nil) }
        let reopened = try await SQLiteGatewayStore.open(path: path)
        for id in succeeded {
            #expect(try await reopened.order(id: id) != nil, "\(id) was acknowledged but is not stored")
        }
        try await reopened.close()
    }
}

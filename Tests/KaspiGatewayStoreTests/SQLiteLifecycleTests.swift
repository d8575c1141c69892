import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPayTesting
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

@Suite("SQLite store: the database is its owner's only")
struct SQLitePermissionsTests {
    private func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test("a new database and its -wal and -shm files are created 0600")
    func aNewDatabaseIsPrivate() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-mode-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try await SQLiteGatewayStore.open(path: path)
        _ = try await store.migrate()
        _ = try await store.setting("admin.session_key", orInsert: "secret")
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            #expect(try mode(path + suffix) == 0o600, "\(suffix)")
        }
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        try await store.close()
    }

    @Test("an existing database others can read is narrowed at start, and the log says so")
    func anExistingReadableDatabaseIsNarrowed() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-mode-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let first = try await SQLiteGatewayStore.open(path: path)
        _ = try await first.migrate()
        try await first.close()
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path + suffix)
        }
        let (logger, logs) = InMemoryLogHandler.logger()
        let store = try await SQLiteGatewayStore.open(path: path, logger: logger)
        #expect(try mode(path) == 0o600)
        #expect(logs.all.contains { $0.message.contains("Narrowed the permissions of \(path) from 644 to 600") })
        try await store.close()
    }
}

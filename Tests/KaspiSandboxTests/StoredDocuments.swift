import Logging
import SQLiteNIO

/// The JSON documents a sandbox's `--data` file holds in `table`, read directly from the file.
///
/// Tests use it to hold the stored field names still: a file written by an older sandbox must
/// load in a newer one, so a Swift rename must never change what is on disk.
func storedDocuments(_ path: String, table: String) async throws -> [String] {
    let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: Logger(label: "test"))
    do {
        let rows = try await connection.query("SELECT document FROM \(table)", [])
        try await connection.close()
        return rows.compactMap { $0.column("document")?.string }
    } catch {
        try? await connection.close()
        throw error
    }
}

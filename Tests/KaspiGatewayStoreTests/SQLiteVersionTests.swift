import KaspiSQLite
import Testing

@testable import KaspiGatewayStore

@Suite("The SQLite the store calls directly")
struct SQLiteVersionTests {
    /// The SQLite that sqlite-nio 1.13.2 bundles. DirectSQLite.swift calls it through
    /// sqlite-nio's internal C target (`VaporCSQLite`), which is not sqlite-nio's API.
    static let expected = "3.54.1"

    @Test("sqlite-nio still bundles the SQLite DirectSQLite.swift was written against")
    func theBundledSQLiteIsTheOneExpected() {
        #expect(
            DirectConnection.bundledSQLiteVersion == Self.expected,
            """
            sqlite-nio now bundles SQLite \(DirectConnection.bundledSQLiteVersion), not \(Self.expected). DirectSQLite.swift calls \
            sqlite-nio's internal C target (VaporCSQLite) directly: check that its sqlite_nio_sqlite3_* functions and flags are \
            unchanged, then update Package.swift's exact sqlite-nio version and this expectation.
            """)
    }
}

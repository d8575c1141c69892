import Foundation
import KaspiGatewayStore
import PropertyBased
import Testing

@testable import KaspiGateway

/// The API's times are the millisecond the store keeps: a create's answer and every later read
/// of the same order say the same time.
@Suite struct TimeFormatTests {
    @Test func aTimeIsWrittenAsTheMillisecondTheStoreKeeps() async {
        await propertyCheck(count: 5000, input: Gen.int(in: 0...4_102_444_800_000), Gen.int(in: 0...999_999)) { ms, micro in
            // Any instant within that millisecond's rounding range, down to the microsecond.
            let date = Date(timeIntervalSince1970: Double(ms) / 1000 + Double(micro) / 1_000_000_000 - 0.0005)
            let stored = Int64((date.timeIntervalSince1970 * 1000).rounded())
            let written = GatewayJSON.iso(date)
            #expect(written == GatewayJSON.iso(Date(timeIntervalSince1970: Double(stored) / 1000)))
            let parsed = GatewayJSON.parseISO(written)
            #expect(parsed.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == stored, "\(written)")
        }
        #expect(GatewayJSON.iso(Date(timeIntervalSince1970: 1_764_662_067.7964)) == "2025-12-02T07:54:27.796Z")
        #expect(GatewayJSON.iso(Date(timeIntervalSince1970: 1_764_662_067.0004)) == "2025-12-02T07:54:27.000Z")
        #expect(GatewayJSON.iso(Date(timeIntervalSince1970: 1_764_662_067.9996)) == "2025-12-02T07:54:28.000Z")
    }

    @Test func aCreatesAnswerAndALaterReadSayTheSameTimes() async throws {
        try await withStack(.sqlite) { s in
            for n in 0..<40 {
                let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":\#(1000 + n)}"#)
                let id = try #require(created.json["id"] as? String)
                let read = try await s.api(.GET, "/v1/orders/\(id)")
                #expect(created.json["createdAt"] as? String == read.json["createdAt"] as? String)
                #expect(created.json["updatedAt"] as? String == read.json["updatedAt"] as? String)
            }
        }
    }
}

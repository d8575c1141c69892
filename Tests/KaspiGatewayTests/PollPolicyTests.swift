import Foundation
import KaspiGatewayStore
import KaspiPay
import PropertyBased
import Testing

@testable import KaspiGateway

/// The polling policy, on its own: deadlines read right, whatever the timing.
@Suite("Polling policy")
struct PollPolicyTests {
    /// What the payer does with a QR purchase in the simulation.
    enum Payer: Int, CaseIterable {
        case neverScans, walksAway, declines, pays
    }

    /// A Kaspi QR purchase polled through the policy, as the poller does it: Kaspi answers as
    /// the sandbox does (its confirmation timeout runs from the scan), the provider keeps its
    /// state, the policy decides. Returns the outcome and what the simulation saw.
    static func simulate(
        scanTimeout: Int, confirmationTimeout: Int, interval: Int, scanAt: Double, actAfter: Double, payer: Payer, seed: UInt64
    ) -> (outcome: PollPolicy.Outcome, at: Double, lastUnscannedPoll: Double, sawWait: Bool) {
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        var random = seed
        func jitter() -> Double {
            // SplitMix64: a fixed sequence per seed.
            random &+= 0x9E37_79B9_7F4A_7C15
            var z = random
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        func kaspi(_ t: Double) -> KaspiQRAPI.PaymentStatus {
            let scanned = payer != .neverScans && t >= scanAt
            if !scanned { return t >= Double(scanTimeout) ? .error : .qrTokenCreated }
            switch payer {
            case .declines where t >= scanAt + actAfter: return .error
            case .pays where t >= scanAt + actAfter: return .processed
            default: return t >= scanAt + Double(confirmationTimeout) ? .error : .wait
            }
        }
        var state = KaspiQRProvider.State(
            paymentID: 1, device: "till", organizationBin: nil, tradePointID: 1, kind: .qr, createdAt: created, pollInterval: interval,
            scanTimeout: scanTimeout, confirmationTimeout: confirmationTimeout, firstWaitAt: nil, scannedAfter: nil)
        let order = GatewayOrder(
            id: "ord_sim", provider: KaspiQRProvider.providerName, providerOrderID: "kk_sim", kind: .qr, amount: 1000, state: .pending,
            createdAt: created)
        let settings = PollPolicy.Settings()
        var lastPolledAt: Date? = nil
        var lastUnscannedPoll = 0.0
        var next = KaspiQRProvider.plan(for: state, lastPolledAt: nil, now: created, jitter: jitter()).nextPollAt
        for attempt in 1...10_000 {
            let t = next.timeIntervalSince(created)
            let status = kaspi(t)
            if status == .qrTokenCreated { lastUnscannedPoll = t }
            if status == .wait, state.firstWaitAt == nil {
                state.firstWaitAt = next
                state.scannedAfter = max(created, lastPolledAt ?? created)
            }
            let plan = KaspiQRProvider.plan(for: state, lastPolledAt: lastPolledAt, now: next, jitter: jitter())
            let outcome = PollPolicy.outcome(
                of: KaspiQRProvider.report(status), providerWord: status.rawValue, for: order, plan: plan, answeredAt: next, settings: settings)
            if outcome != .report(.pending) { return (outcome, t, lastUnscannedPoll, state.firstWaitAt != nil) }
            lastPolledAt = next
            guard let after = PollPolicy.nextPoll(after: order, plan: plan, attempts: attempt, at: next, settings: settings) else { break }
            next = after
        }
        Issue.record("the simulation never ended")
        return (.report(.pending), 0, 0, false)
    }

    static func isExpired(_ outcome: PollPolicy.Outcome) -> Bool {
        if case .expire = outcome { return true }
        return false
    }

    @Test("a provider state read again is the one first decoded, past the cache's capacity too")
    func decodedStatesAreRemembered() {
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        func state(_ id: Int64) -> KaspiQRProvider.State {
            KaspiQRProvider.State(
                paymentID: id, device: "till", organizationBin: nil, tradePointID: 1, kind: .qr, createdAt: created, pollInterval: 5,
                scanTimeout: 180, confirmationTimeout: 65, firstWaitAt: nil, scannedAfter: nil)
        }
        let count = KaspiQRProvider.State.RecentStates.capacity + 100
        let texts = (0..<count).map { state(Int64($0)).encoded }
        let first = texts.map { KaspiQRProvider.State.decode($0) }
        let again = texts.map { KaspiQRProvider.State.decode($0) }
        let matching = (0..<count).count { first[$0] == state(Int64($0)) && again[$0] == state(Int64($0)) }
        #expect(matching == count)
        #expect(KaspiQRProvider.State.decode("{not json") == nil)
        #expect(KaspiQRProvider.State.decode(nil) == nil)
        var recent = KaspiQRProvider.State.RecentStates()
        for id in 0..<count { recent.remember(state(Int64(id)), for: texts[id]) }
        #expect(recent.state(for: texts[0]) == nil)
        #expect(recent.state(for: texts[count - 1]) == state(Int64(count - 1)))
    }

    @Test("Kaspi's Error at its confirmation deadline is always expired, however the polls fall")
    func timeoutsAreExpired() async {
        await propertyCheck(
            count: 2000, input: Gen.int(in: 10...300), Gen.int(in: 3...120), Gen.int(in: 1...10), Gen.int(in: 0...999), Gen.int(in: 0...Int.max)
        ) { scan, confirmation, interval, scanPermille, seed in
            let scanAt = Double(scan) * Double(scanPermille) / 1000
            let walked = Self.simulate(
                scanTimeout: scan, confirmationTimeout: confirmation, interval: interval, scanAt: scanAt, actAfter: 0, payer: .walksAway,
                seed: UInt64(seed))
            #expect(Self.isExpired(walked.outcome), "scanned at \(scanAt) of \(scan) s, \(confirmation) s to confirm, every \(interval) s")
            let never = Self.simulate(
                scanTimeout: scan, confirmationTimeout: confirmation, interval: interval, scanAt: 0, actAfter: 0, payer: .neverScans,
                seed: UInt64(seed))
            #expect(Self.isExpired(never.outcome))
            #expect(never.at >= Double(scan))
        }
    }

    @Test("a payer who declines or pays before any deadline could have run out is declined or paid")
    func refusalsAndPaymentsAreTheirs() async {
        await propertyCheck(
            count: 2000, input: Gen.int(in: 10...300), Gen.int(in: 3...120), Gen.int(in: 1...10), Gen.int(in: 0...999), Gen.int(in: 0...999),
            Gen.int(in: 0...Int.max)
        ) { scan, confirmation, interval, scanPermille, actPermille, seed in
            let scanAt = Double(scan) * Double(scanPermille) / 1000
            let actAfter = Double(confirmation) * Double(actPermille) / 1000
            let paid = Self.simulate(
                scanTimeout: scan, confirmationTimeout: confirmation, interval: interval, scanAt: scanAt, actAfter: actAfter, payer: .pays,
                seed: UInt64(seed))
            #expect(paid.outcome == .report(.approved), "paid \(actAfter) s after a scan at \(scanAt)")
            let declined = Self.simulate(
                scanTimeout: scan, confirmationTimeout: confirmation, interval: interval, scanAt: scanAt, actAfter: actAfter, payer: .declines,
                seed: UInt64(seed))
            // The scan is seen at most 1.1 intervals late and the refusal as late again: a
            // refusal within the confirmation time less that cannot be Kaspi's timeout.
            let clearlyEarly = actAfter < Double(confirmation) - 2.2 * Double(interval)
            if clearlyEarly, declined.sawWait || declined.at < Double(scan) {
                #expect(declined.outcome == .report(.declined), "declined \(actAfter) s after a scan at \(scanAt), seen at \(declined.at)")
            }
            // Whatever it is called, it is never before the last poll that saw no scan.
            #expect(declined.at >= declined.lastUnscannedPoll)
        }
    }

    @Test("the issue's timing: scanned just after a poll, first Wait 1.2 s later, Error at the confirmation deadline")
    func theReportedTiming() {
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        var state = KaspiQRProvider.State(
            paymentID: 1, device: "till", organizationBin: nil, tradePointID: 1, kind: .qr, createdAt: created, pollInterval: 1,
            scanTimeout: 20, confirmationTimeout: 10, firstWaitAt: nil, scannedAfter: nil)
        // Polls at 1.0 (QrTokenCreated), scan at 1.05, first Wait seen at 2.25.
        let lastUnscanned = created.addingTimeInterval(1.0)
        state.firstWaitAt = created.addingTimeInterval(2.25)
        state.scannedAfter = lastUnscanned
        let order = GatewayOrder(
            id: "ord_t", provider: KaspiQRProvider.providerName, providerOrderID: "kk_t", kind: .qr, amount: 1000, state: .pending, createdAt: created
        )
        let settings = PollPolicy.Settings()
        // Kaspi's Error at 11.1 s: 10 s after the scan, before 10 s after the first Wait.
        let at = created.addingTimeInterval(11.1)
        let plan = KaspiQRProvider.plan(for: state, lastPolledAt: created.addingTimeInterval(11.0), now: at, jitter: 0)
        #expect(Self.isExpired(PollPolicy.outcome(of: .declined, providerWord: "Error", for: order, plan: plan, answeredAt: at, settings: settings)))
        // Still Wait then: the payer may confirm until 10 s after the first Wait.
        #expect(PollPolicy.outcome(of: .pending, for: order, plan: plan, answeredAt: at, settings: settings) == .report(.pending))
        // An Error 3 s after the scan is the payer's refusal.
        let early = created.addingTimeInterval(4.3)
        #expect(
            PollPolicy.outcome(of: .declined, providerWord: "Error", for: order, plan: plan, answeredAt: early, settings: settings)
                == .report(.declined))
    }

    @Test("the gateway's own deadlines, late polls and back-off, without a provider plan")
    func ownDeadlines() {
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        var settings = PollPolicy.Settings()
        settings.expireAfter = 3600
        settings.latePollInterval = 900
        settings.latePaymentWindow = 1800
        settings.pollInterval = 15
        settings.maxPollInterval = 600
        let order = GatewayOrder(
            id: "ord_o", provider: "kaspi-pay", providerOrderID: "kp_o", kind: .redirect, amount: 1000, state: .pending, createdAt: created)
        #expect(PollPolicy.deadline(of: order, plan: nil, settings: settings) == created.addingTimeInterval(3600))
        // No provider deadline of its own: a decline is the payer's, whenever it comes.
        #expect(
            PollPolicy.outcome(of: .declined, for: order, plan: nil, answeredAt: created.addingTimeInterval(7200), settings: settings)
                == .report(.declined))
        let at = created.addingTimeInterval(3600)
        #expect(
            PollPolicy.outcome(of: .pending, for: order, plan: nil, answeredAt: at, settings: settings)
                == .expire(reason: "still pending after 3600 s", latePollAt: at.addingTimeInterval(900)))
        // Late polls end with the window.
        var expired = order
        expired.state = .expired
        #expect(PollPolicy.nextPoll(after: expired, plan: nil, attempts: 9, at: at, settings: settings) == at.addingTimeInterval(900))
        #expect(PollPolicy.nextPoll(after: expired, plan: nil, attempts: 9, at: at.addingTimeInterval(1000), settings: settings) == nil)
        // Back-off doubles up to the cap; final orders are never polled again.
        #expect(PollPolicy.nextPoll(after: order, plan: nil, attempts: 1, at: at, settings: settings) == at.addingTimeInterval(15))
        #expect(PollPolicy.nextPoll(after: order, plan: nil, attempts: 3, at: at, settings: settings) == at.addingTimeInterval(60))
        #expect(PollPolicy.nextPoll(after: order, plan: nil, attempts: 30, at: at, settings: settings) == at.addingTimeInterval(600))
        var paid = order
        paid.state = .paid
        #expect(PollPolicy.nextPoll(after: paid, plan: nil, attempts: 2, at: at, settings: settings) == nil)
        // A create that never arrived: expired once it cannot be in flight any more.
        var created_ = order
        created_.state = .created
        #expect(PollPolicy.outcome(ofFailure: true, for: created_, at: created.addingTimeInterval(10), settings: settings) == nil)
        #expect(PollPolicy.outcome(ofFailure: true, for: created_, at: created.addingTimeInterval(121), settings: settings) != nil)
        #expect(PollPolicy.outcome(ofFailure: false, for: created_, at: created.addingTimeInterval(121), settings: settings) == nil)
    }
}

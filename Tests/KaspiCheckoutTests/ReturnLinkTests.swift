import Foundation
import KaspiCheckout
import PropertyBased
import Testing

@Suite("KaspiCheckout: the return deep link")
struct ReturnLinkTests {
    @Test func readsTheGuidesFormatAndTheGatewaysID() throws {
        let link = try #require(
            CheckoutReturnLink(url: URL(string: "yourapp://payment?status=success&orderId=ORDER-123&gatewayOrderId=ord_9")!))
        #expect(link.status == .success && link.orderID == "ORDER-123" && link.gatewayOrderID == "ord_9")
        #expect(link.mayConcern(orderID: "ord_9") && !link.mayConcern(orderID: "ord_8"))
        #expect(CheckoutReturnLink(url: URL(string: "yourapp://payment?status=failed")!)?.status == .failed)
        #expect(CheckoutReturnLink(url: URL(string: "yourapp://payment?status=weird")!)?.status == .other("weird"))
        // Nothing to say: not a return link.
        #expect(CheckoutReturnLink(url: URL(string: "yourapp://payment")!) == nil)
        #expect(CheckoutReturnLink(url: URL(string: "yourapp://payment?x=1")!) == nil)
    }

    @Test func theFirstOfARepeatedParameterCounts() throws {
        let link = try #require(
            CheckoutReturnLink(url: URL(string: "app://p?gatewayOrderId=ord_1&status=failed&status=success&gatewayOrderId=ord_2")!))
        #expect(link.status == .failed && link.gatewayOrderID == "ord_1")
    }

    @Test func aPrefixMustMatchSchemeHostAndPath() {
        let prefix = URL(string: "MyShop://payment/")!
        #expect(CheckoutReturnLink(url: URL(string: "myshop://payment?status=success")!, prefix: prefix) != nil)
        #expect(CheckoutReturnLink(url: URL(string: "myshop://PAYMENT/?status=success")!, prefix: prefix) != nil)
        #expect(CheckoutReturnLink(url: URL(string: "myshop://payment/extra?status=success")!, prefix: prefix) == nil)
        #expect(CheckoutReturnLink(url: URL(string: "evil://payment?status=success")!, prefix: prefix) == nil)
        let universal = URL(string: "https://shop.example/kaspi/return")!
        #expect(CheckoutReturnLink(url: URL(string: "https://shop.example/kaspi/return?status=pending")!, prefix: universal) != nil)
        #expect(CheckoutReturnLink(url: URL(string: "https://evil.example/kaspi/return?status=pending")!, prefix: universal) == nil)
    }

    @Test func oversizedAndControlCharacterIDsAreRefused() {
        let long = "app://p?status=success&orderId=" + String(repeating: "a", count: 5000)
        #expect(CheckoutReturnLink(url: URL(string: long)!) == nil)
        let control = CheckoutReturnLink(url: URL(string: "app://p?status=success&orderId=a%00b&gatewayOrderId=%0A")!)
        #expect(control?.orderID == nil && control?.gatewayOrderID == nil)
        let tooLong = CheckoutReturnLink(url: URL(string: "app://p?status=success&gatewayOrderId=" + String(repeating: "x", count: 129))!)
        #expect(tooLong?.gatewayOrderID == nil)
    }

    /// Links built from generated values read back as built.
    @Test func generatedLinksReadBackAsBuilt() async {
        let idCharacter = Gen.letterOrNumber
        await propertyCheck(
            count: 500, input: Gen.element(of: ["success", "pending", "failed", "", "other"]).map { $0 ?? "" }, idCharacter.string(of: 1...40),
            idCharacter.string(of: 1...40)
        ) { status, orderID, gatewayOrderID in
            var components = URLComponents()
            components.scheme = "shop"
            components.host = "payment"
            components.queryItems = [
                .init(name: "status", value: status), .init(name: "orderId", value: orderID), .init(name: "gatewayOrderId", value: gatewayOrderID),
            ]
            guard let url = components.url, let link = CheckoutReturnLink(url: url, prefix: URL(string: "shop://payment")) else {
                Issue.record("not read: \(components)")
                return
            }
            #expect(link.orderID == orderID && link.gatewayOrderID == gatewayOrderID)
            switch status {
            case "success": #expect(link.status == .success)
            case "pending": #expect(link.status == .pending)
            case "failed": #expect(link.status == .failed)
            default: #expect(link.status == .other(status))
            }
        }
    }

    /// Any text a hostile page or app could send as a link: never a crash, and a link read
    /// from it keeps ids within bounds.
    @Test func fuzzedLinksNeverCrash() async {
        let pieces = [
            "app://p?", "status=", "success", "&", "orderId=", "gatewayOrderId=", "%", "%00", "%ZZ", "%F0%9F", "#", "?", "=", "&&", "//",
            "@", ":", "[", "]", "\u{202E}", "ord_1", " ", "%0A", "\\", "payment", "https://", "shop.example", "/", "..",
        ]
        await propertyCheck(count: 3000, input: Gen.element(of: pieces).map { $0 ?? "" }.array(of: 0...24), Gen.latin1.string(of: 0...12)) {
            parts, noise in
            let text = parts.joined() + noise
            guard let url = URL(string: text) else { return }
            let link = CheckoutReturnLink(url: url)
            let prefixed = CheckoutReturnLink(url: url, prefix: URL(string: "app://p"))
            for read in [link, prefixed].compactMap({ $0 }) {
                #expect((read.orderID?.count ?? 0) <= 128 && (read.gatewayOrderID?.count ?? 0) <= 128)
            }
        }
    }
}

import Foundation

extension KaspiClient {
    /// Orders: `POST /api/v1/orders/create` and `GET /api/v1/orders/{orderId}/status`.
    public struct Orders: Sendable {
        let executor: RequestExecutor

        /// Creates an order and returns the URL to send the payer to.
        ///
        /// Everything is validated before a request is sent. After a timeout or a 5xx answer
        /// the create is sent again; an `ORDER_ALREADY_EXISTS` that follows such a retry is
        /// confirmed through the status call and returned as ``CreatedOrder/recovered``.
        ///
        /// - Parameters:
        ///   - order: what to create.
        ///   - resuming: the same create may have reached Kaspi before (a process that sent it
        ///     crashed): an `ORDER_ALREADY_EXISTS` for the same amount is that order, confirmed
        ///     through the status call and returned as ``CreatedOrder/recovered``.
        /// - Throws: ``KaspiError``; validation errors (``KaspiError/amountBelowMinimum(_:)``,
        ///   ``KaspiError/invalidURL(field:value:reason:)``, ``KaspiError/descriptionTooLong(_:)``)
        ///   before anything is sent.
        public func create(_ order: NewOrder, resuming: Bool = false) async throws(KaspiError) -> CreatedOrder {
            try Validation.paymentAmount(order.amount)
            let returnURL = try Validation.url(order.returnURL, field: "returnUrl")
            let failURL = try Validation.url(order.failURL, field: "failUrl")
            if let description = order.description, description.count > 256 {
                throw .descriptionTooLong(description.count)
            }
            let configuration = executor.configuration
            let body = CreateOrderBody(
                amount: order.amount.tenge, orderID: order.orderID.rawValue, returnURL: returnURL,
                failURL: failURL, tradePointID: configuration.tradePointID.rawValue,
                description: order.description,
                signature: Signature.createOrder(amount: order.amount, orderID: order.orderID, apiKey: configuration.apiKey))
            let call = try executor.call(.post, ["api", "v1", "orders", "create"], body: body, name: "orders.create")
            return try await executor.createWithRecovery(call, orderID: order.orderID, amount: order.amount, maybeSent: resuming) {
                (status, bytes) throws(KaspiError) in
                let reply = try executor.decode(CreateOrderReply.self, from: bytes, status: status)
                guard let url = try? HTTPURLValidation.validate(reply.paymentURL) else {
                    throw .undecodableBody(status: status, reason: "paymentUrl is not an absolute http(s) URL", bodySnippet: "")
                }
                return CreatedOrder(orderID: order.orderID, paymentURL: url, status: reply.status ?? .pending, recovered: false)
            } recover: { (reply) throws(KaspiError) in
                guard let text = reply.paymentURL, let url = try? HTTPURLValidation.validate(text) else {
                    throw .createOutcomeUnknown(order.orderID)
                }
                return CreatedOrder(orderID: order.orderID, paymentURL: url, status: reply.status, recovered: true)
            }
        }

        /// Reads an order's status. Retried on transient failures.
        ///
        /// - Throws: ``KaspiError``, for example ``KaspiError/orderNotFound(_:)``.
        public func status(of orderID: OrderID) async throws(KaspiError) -> OrderStatus {
            let reply = try await executor.orderStatus(orderID)
            return OrderStatus(
                status: reply.status, amount: reply.amount.flatMap { try? Amount(tenge: $0) },
                transactionID: reply.transactionID,
                refundedAmount: reply.refundedAmount.flatMap { try? Amount(tenge: $0) })
        }

        /// Polls an order's status until it is final or the attempts run out.
        ///
        /// Transient failures count as attempts and polling goes on; other errors end it.
        ///
        /// - Parameters:
        ///   - orderID: the order.
        ///   - options: interval and attempts; the guide's 3 s and 60 by default.
        ///   - progress: called after each attempt, for example to show progress.
        /// - Returns: paid, declined, cancelled, or timed out (the outcome is still unknown).
        /// - Throws: ``KaspiError`` for a permanent failure; `CancellationError` when the
        ///   task is cancelled.
        public func waitForOutcome(
            of orderID: OrderID, options: PollingOptions = .init(),
            progress: (@Sendable (PollProgress) -> Void)? = nil
        ) async throws -> PaymentOutcome {
            try await executor.poll(options: options, progress: progress) { () throws(KaspiError) in
                try await status(of: orderID)
            }
        }
    }

    /// QR payments: `POST /api/v1/qr/create` and `GET /api/v1/qr/{qrToken}/status`.
    public struct QR: Sendable {
        let executor: RequestExecutor

        /// Creates a QR payment. It creates an order like ``Orders/create(_:resuming:)`` does, in the
        /// same orderId space, and is retried and recovered the same way.
        ///
        /// - Parameters:
        ///   - amount: what the payer pays.
        ///   - orderID: your order id, which Kaspi keeps unique.
        ///   - resuming: the same create may have reached Kaspi before, as for
        ///     ``Orders/create(_:resuming:)``.
        /// - Throws: ``KaspiError``; ``KaspiError/amountBelowMinimum(_:)`` before sending.
        public func create(amount: Amount, orderID: OrderID, resuming: Bool = false) async throws(KaspiError) -> CreatedQR {
            try Validation.paymentAmount(amount)
            let configuration = executor.configuration
            let body = CreateQRBody(
                amount: amount.tenge, orderID: orderID.rawValue, tradePointID: configuration.tradePointID.rawValue,
                signature: Signature.createQR(amount: amount, orderID: orderID, apiKey: configuration.apiKey))
            let call = try executor.call(.post, ["api", "v1", "qr", "create"], body: body, name: "qr.create")
            return try await executor.createWithRecovery(call, orderID: orderID, amount: amount, maybeSent: resuming) {
                (status, bytes) throws(KaspiError) in
                let reply = try executor.decode(CreateQRReply.self, from: bytes, status: status)
                guard let png = Data(base64Encoded: reply.qrCode), !png.isEmpty else {
                    throw .undecodableBody(status: status, reason: "qrCode is not base64", bodySnippet: "")
                }
                guard Validation.tokenProblem(reply.qrToken) == nil else {
                    throw .undecodableBody(status: status, reason: "qrToken is malformed", bodySnippet: "")
                }
                return CreatedQR(orderID: orderID, token: reply.qrToken, png: Array(png), recovered: false)
            } recover: { (reply) throws(KaspiError) in
                guard let token = reply.qrToken, Validation.tokenProblem(token) == nil,
                    let code = reply.qrCode, let png = Data(base64Encoded: code), !png.isEmpty
                else { throw .createOutcomeUnknown(orderID) }
                return CreatedQR(orderID: orderID, token: token, png: Array(png), recovered: true)
            }
        }

        /// Reads a QR payment's status. Retried on transient failures.
        ///
        /// - Throws: ``KaspiError``, for example ``KaspiError/orderNotFound(_:)``.
        public func status(token: String) async throws(KaspiError) -> PaymentStatus {
            if let reason = Validation.tokenProblem(token) { throw .invalidQRToken(token, reason: reason) }
            let call = try executor.call(
                .get, ["api", "v1", "qr", token, "status"], body: Optional<CreateQRBody>.none, name: "qr.status")
            let bytes = try await executor.sendIdempotent(call)
            return try executor.decode(QRStatusReply.self, from: bytes).status
        }

        /// Polls a QR payment until it is final or the attempts run out (the guide's
        /// `pollQRStatus`: every 3 s, at most 60 times).
        ///
        /// - Returns: paid, declined, cancelled, or timed out (the outcome is still unknown).
        /// - Throws: ``KaspiError`` for a permanent failure; `CancellationError` when the
        ///   task is cancelled.
        public func waitForPayment(
            token: String, options: PollingOptions = .init(),
            progress: (@Sendable (PollProgress) -> Void)? = nil
        ) async throws -> PaymentOutcome {
            try await executor.poll(options: options, progress: progress) { () throws(KaspiError) in
                OrderStatus(status: try await status(token: token))
            }
        }
    }

    /// Refunds: `POST /api/v1/orders/{orderId}/refund`.
    public struct Refunds: Sendable {
        let executor: RequestExecutor

        /// Refunds all or part of an approved order.
        ///
        /// A refund is never re-sent blindly. The order's refunded amount is read first; after
        /// an ambiguous failure (timeout, 5xx) it is read again: if the refund went through it
        /// is returned as ``Refund/recovered``, if it did not it is sent again, and if that
        /// cannot be told ``KaspiError/refundOutcomeUnknown(_:_:)`` is thrown.
        ///
        /// - Parameters:
        ///   - orderID: the approved order.
        ///   - amount: how much to refund, at least 1 tenge.
        ///   - transactionID: Kaspi's transaction id of the payment, checked by the server
        ///     when given.
        /// - Throws: ``KaspiError``, for example ``KaspiError/refundNotAllowed(_:)``.
        public func create(orderID: OrderID, amount: Amount, transactionID: String? = nil) async throws(KaspiError) -> Refund {
            guard amount.tenge > 0 else { throw .zeroRefund }
            if let transactionID {
                if transactionID.isEmpty { throw .invalidTransactionID(reason: "it is empty") }
                if transactionID.count > 128 { throw .invalidTransactionID(reason: "it is longer than 128 characters") }
                if transactionID.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                    throw .invalidTransactionID(reason: "it contains control characters")
                }
            }
            let configuration = executor.configuration
            let body = RefundBody(
                amount: amount.tenge,
                signature: Signature.refund(amount: amount, orderID: orderID, apiKey: configuration.apiKey),
                transactionID: transactionID)
            let call = try executor.call(
                .post, ["api", "v1", "orders", orderID.rawValue, "refund"], body: body, name: "refunds.create")
            var before = try await executor.orderStatus(orderID).refundedAmount
            var attempt = 1
            let startedAt = executor.clock.now()
            while true {
                do {
                    let (status, bytes) = try await executor.sendOnce(call, attempt: attempt, startedAt: startedAt)
                    let reply = try executor.decode(RefundReply.self, from: bytes, status: status)
                    return Refund(
                        orderID: orderID, refundID: reply.refundID,
                        amount: (try? Amount(tenge: reply.amount)) ?? amount,
                        refundedAmount: (try? Amount(tenge: reply.refundedAmount)) ?? amount, recovered: false)
                } catch {
                    if error.isAmbiguous {
                        guard let refundedBefore = before else { throw .refundOutcomeUnknown(orderID, amount) }
                        let after = try await executor.orderStatus(orderID).refundedAmount
                        guard let after else { throw .refundOutcomeUnknown(orderID, amount) }
                        if after == refundedBefore + amount.tenge {
                            executor.logger.info(
                                "Kaspi refund confirmed after an ambiguous failure",
                                metadata: ["kaspi.call": "refunds.create", "error.code": "\(error.code)"])
                            return Refund(
                                orderID: orderID, refundID: nil, amount: amount,
                                refundedAmount: (try? Amount(tenge: after)) ?? amount, recovered: true)
                        }
                        guard after == refundedBefore else { throw .refundOutcomeUnknown(orderID, amount) }
                        // Not applied: the refund may be sent again.
                        guard let delay = executor.retryDelay(after: error, retry: attempt, startedAt: startedAt) else {
                            throw .refundOutcomeUnknown(orderID, amount)
                        }
                        before = after
                        try await executor.sleep(delay, before: call, after: error, attempt: attempt)
                    } else {
                        guard case .rateLimited = error, let delay = executor.retryDelay(after: error, retry: attempt, startedAt: startedAt)
                        else { throw error }
                        try await executor.sleep(delay, before: call, after: error, attempt: attempt)
                    }
                    attempt += 1
                }
            }
        }
    }
}

extension RequestExecutor {
    func orderStatus(_ orderID: OrderID) async throws(KaspiError) -> OrderStatusReply {
        let call = try call(
            .get, ["api", "v1", "orders", orderID.rawValue, "status"], body: Optional<CreateQRBody>.none,
            name: "orders.status")
        let bytes = try await sendIdempotent(call)
        return try decode(OrderStatusReply.self, from: bytes)
    }

    /// Sends a create; after an ambiguous failure sends it again, and confirms an
    /// `ORDER_ALREADY_EXISTS` that follows through the status call (at once when `maybeSent`:
    /// an earlier process may have sent it).
    func createWithRecovery<T>(
        _ call: Call, orderID: OrderID, amount: Amount, maybeSent: Bool = false,
        decode: (Int, [UInt8]) throws(KaspiError) -> T,
        recover: (OrderStatusReply) throws(KaspiError) -> T
    ) async throws(KaspiError) -> T {
        var attempt = 1
        var maybeCreated = maybeSent
        let startedAt = clock.now()
        while true {
            do {
                let (status, bytes) = try await sendOnce(call, attempt: attempt, startedAt: startedAt)
                return try decode(status, bytes)
            } catch {
                if case .orderAlreadyExists = error, maybeCreated {
                    let reply = try await orderStatus(orderID)
                    if let reported = reply.amount, reported != amount.tenge { throw error }
                    logger.info(
                        "Kaspi create confirmed after an ambiguous failure",
                        metadata: ["kaspi.call": "\(call.name)"])
                    return try recover(reply)
                }
                if error.isAmbiguous { maybeCreated = true }
                guard error.isTransient, let delay = retryDelay(after: error, retry: attempt, startedAt: startedAt) else { throw error }
                try await sleep(delay, before: call, after: error, attempt: attempt)
                attempt += 1
            }
        }
    }

    func poll(
        options: PollingOptions, progress: (@Sendable (PollProgress) -> Void)?,
        read: () async throws(KaspiError) -> OrderStatus
    ) async throws -> PaymentOutcome {
        var last: OrderStatus? = nil
        for attempt in 1...max(1, options.maxAttempts) {
            try await clock.sleep(options.interval)
            var failure: KaspiError? = nil
            do {
                let status = try await read()
                last = status
                progress?(PollProgress(attempt: attempt, maxAttempts: options.maxAttempts, status: status.status, error: nil))
                switch status.status {
                case .approved: return .paid(status)
                case .declined: return .declined(status)
                case .cancelled: return .cancelled(status)
                case .pending, .unknown: continue
                }
            } catch {
                try Task.checkCancellation()
                guard error.isTransient else { throw error }
                failure = error
            }
            progress?(PollProgress(attempt: attempt, maxAttempts: options.maxAttempts, status: last?.status, error: failure))
        }
        return .timedOut(last)
    }
}

/// How a wait polls: the guide's every 3 seconds, at most 60 times, by default.
public struct PollingOptions: Sendable, Hashable {
    /// The wait before each status read.
    public var interval: Duration
    /// Status reads in all.
    public var maxAttempts: Int

    /// Creates options: every `interval`, at most `maxAttempts` reads.
    public init(interval: Duration = .seconds(3), maxAttempts: Int = 60) {
        self.interval = max(.zero, interval)
        self.maxAttempts = max(1, maxAttempts)
    }
}

/// One step of a wait, for progress displays.
public struct PollProgress: Sendable, Hashable {
    /// This attempt's number, from 1.
    public var attempt: Int
    /// Attempts in all.
    public var maxAttempts: Int
    /// The last status read, if any.
    public var status: PaymentStatus?
    /// The transient error this attempt ended with, if it failed.
    public var error: KaspiError?
}

/// How a wait for a payment ended.
public enum PaymentOutcome: Sendable, Hashable {
    /// Approved: the money is taken.
    case paid(OrderStatus)
    /// Declined.
    case declined(OrderStatus)
    /// Cancelled by the payer, or expired.
    case cancelled(OrderStatus)
    /// Still not final after every attempt: the outcome is unknown, not failed. The last
    /// status read, if any read succeeded.
    case timedOut(OrderStatus?)

    /// A short name: `paid`, `declined`, `cancelled` or `timeout`.
    public var name: String {
        switch self {
        case .paid: "paid"
        case .declined: "declined"
        case .cancelled: "cancelled"
        case .timedOut: "timeout"
        }
    }
}

enum Validation {
    static func paymentAmount(_ amount: Amount) throws(KaspiError) {
        guard amount >= Amount.minimumPayment else { throw .amountBelowMinimum(amount) }
    }

    static func url(_ url: URL, field: String) throws(KaspiError) -> String {
        let text = url.absoluteString
        do {
            _ = try HTTPURLValidation.validate(text)
        } catch {
            throw .invalidURL(field: field, value: text, reason: error.reason)
        }
        guard text.utf8.count <= 2048 else {
            throw .invalidURL(field: field, value: text, reason: "it is longer than 2048 bytes")
        }
        return text
    }

    static func tokenProblem(_ token: String) -> String? {
        if token.isEmpty { return "it is empty" }
        if token.utf8.count > 256 { return "it is longer than 256 bytes" }
        if token.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0 == "/" || $0 == "?" || $0 == "#" }) {
            return "it contains spaces, control characters, /, ? or #"
        }
        return nil
    }
}

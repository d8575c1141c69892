import Foundation
import KaspiPay
import Yams

/// Holds JSON against the schemas of an OpenAPI 3.1 document (`openapi/kaspi-pay.yaml`), so
/// that the SDK, the sandbox and the contract cannot drift apart silently.
///
/// It implements the JSON Schema keywords the project's documents use: `type` (also as a
/// list), `properties`, `required`, `additionalProperties`, `enum`, `const`, `minimum`,
/// `maximum`, `minLength`, `maxLength`, `pattern`, `format: uri`, `items`, `oneOf`, `anyOf`,
/// `allOf` and local `$ref`s. An unknown keyword is an error, so the checker cannot silently
/// accept what it does not understand.
public struct ContractChecker: Sendable {
    /// The parsed document.
    private let document: JSONValue

    /// Loads a document.
    ///
    /// - Throws: when the file cannot be read or is not YAML.
    public init(contentsOf url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        guard let parsed = try Yams.load(yaml: text) else { throw CheckError("empty document") }
        self.document = try JSONValue(yaml: parsed)
    }

    /// The document at the repository's `openapi/` folder, found from this source file.
    public static func kaspiPay(file: String = #filePath) throws -> ContractChecker {
        try ContractChecker(contentsOf: repositoryRoot(file: file).appendingPathComponent("openapi/kaspi-pay.yaml"))
    }

    /// The Kaspi QR API's document, `openapi/kaspi-qr.yaml`.
    public static func kaspiQR(file: String = #filePath) throws -> ContractChecker {
        try ContractChecker(contentsOf: repositoryRoot(file: file).appendingPathComponent("openapi/kaspi-qr.yaml"))
    }

    /// The gateway's document, `openapi/gateway.yaml`.
    public static func gateway(file: String = #filePath) throws -> ContractChecker {
        try ContractChecker(contentsOf: repositoryRoot(file: file).appendingPathComponent("openapi/gateway.yaml"))
    }

    /// The repository root: the nearest folder above `file` holding `Package.swift`.
    public static func repositoryRoot(file: String = #filePath) -> URL {
        var url = URL(fileURLWithPath: file).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// A problem found in a document or a value.
    public struct CheckError: Error, CustomStringConvertible, Sendable {
        /// What is wrong, and where.
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// The schema of an operation's JSON request body.
    public func requestSchema(path: String, method: String) throws -> JSONValue {
        let operation = try self.operation(path: path, method: method)
        guard let schema = operation["requestBody"]?["content"]?["application/json"]?["schema"] else {
            throw CheckError("\(method) \(path) has no JSON request body")
        }
        return schema
    }

    /// The schema of an operation's JSON response for a status (or `default`).
    public func responseSchema(path: String, method: String, status: Int) throws -> JSONValue {
        let operation = try self.operation(path: path, method: method)
        guard let responses = operation["responses"] else { throw CheckError("\(method) \(path) has no responses") }
        guard let response = responses["\(status)"] ?? responses["default"] else {
            throw CheckError("\(method) \(path) documents no response \(status)")
        }
        let resolved = try resolve(response)
        guard let schema = resolved["content"]?["application/json"]?["schema"] else {
            throw CheckError("\(method) \(path) response \(status) has no JSON schema")
        }
        return schema
    }

    /// The schema of a webhook's request body (`webhooks:` section).
    public func webhookSchema(name: String) throws -> JSONValue {
        guard let hook = document["webhooks"]?[name],
            let schema = hook["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]
        else { throw CheckError("no webhook \(name)") }
        return schema
    }

    /// A named schema under `components/schemas`.
    public func schema(named name: String) throws -> JSONValue {
        guard let schema = document["components"]?["schemas"]?[name] else { throw CheckError("no schema \(name)") }
        return schema
    }

    /// Every documented operation as (method, path) pairs.
    public var operations: [(method: String, path: String)] {
        guard case .object(let paths)? = document["paths"] else { return [] }
        var out: [(String, String)] = []
        for (path, item) in paths {
            guard case .object(let methods) = item else { continue }
            for method in methods.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                out.append((method, path))
            }
        }
        return out.sorted { $0.1 == $1.1 ? $0.0 < $1.0 : $0.1 < $1.1 }
    }

    /// The raw document, for tests that read it directly.
    public var root: JSONValue { document }

    private func operation(path: String, method: String) throws -> JSONValue {
        guard let operation = document["paths"]?[path]?[method.lowercased()] else {
            throw CheckError("no operation \(method) \(path)")
        }
        return operation
    }

    /// Checks JSON bytes against a schema.
    ///
    /// - Returns: every violation, each with its JSON path; empty when the value conforms.
    public func violations(of json: [UInt8], against schema: JSONValue) -> [String] {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(json)) else { return ["$: not JSON"] }
        var problems: [String] = []
        check(value, against: schema, at: "$", into: &problems)
        return problems
    }

    private func resolve(_ node: JSONValue) throws -> JSONValue {
        guard case .string(let ref)? = node["$ref"] else { return node }
        guard ref.hasPrefix("#/") else { throw CheckError("only local $ref is supported: \(ref)") }
        var current = document
        for part in ref.dropFirst(2).split(separator: "/") {
            let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = current[key] else { throw CheckError("dangling $ref \(ref)") }
            current = next
        }
        return try resolve(current)
    }

    private static let known: Set<String> = [
        "type", "properties", "required", "additionalProperties", "enum", "const", "minimum", "maximum",
        "minLength", "maxLength", "pattern", "format", "items", "oneOf", "anyOf", "allOf", "$ref",
        "description", "title", "examples", "example", "x-extension", "x-extension-values", "deprecated", "default", "contentEncoding",
        "contentMediaType", "readOnly", "writeOnly",
    ]

    private func check(_ value: JSONValue, against rawSchema: JSONValue, at path: String, into problems: inout [String]) {
        let schema: JSONValue
        do { schema = try resolve(rawSchema) } catch {
            problems.append("\(path): \(error)")
            return
        }
        guard case .object(let keywords) = schema else {
            if case .bool(false) = schema { problems.append("\(path): no value is allowed here") }
            return
        }
        for key in keywords.keys where !Self.known.contains(key) {
            problems.append("\(path): the checker does not know the keyword \(key)")
        }
        if let type = keywords["type"] {
            let allowed: [String]
            switch type {
            case .string(let one): allowed = [one]
            case .array(let many): allowed = many.compactMap { if case .string(let s) = $0 { s } else { nil } }
            default: allowed = []
            }
            if !allowed.contains(where: { value.matches(type: $0) }) {
                problems.append("\(path): expected \(allowed.joined(separator: " or ")), found \(value.typeName)")
                return
            }
        }
        if case .array(let options)? = keywords["enum"], !options.contains(where: { $0.sameValue(as: value) }) {
            problems.append("\(path): \(value.short) is not one of \(options.map(\.short).joined(separator: ", "))")
        }
        if let constant = keywords["const"], !constant.sameValue(as: value) {
            problems.append("\(path): \(value.short) is not \(constant.short)")
        }
        if let n = value.double {
            if let minimum = keywords["minimum"]?.double, n < minimum { problems.append("\(path): \(n) < \(minimum)") }
            if let maximum = keywords["maximum"]?.double, n > maximum { problems.append("\(path): \(n) > \(maximum)") }
        }
        if case .string(let s) = value {
            if let min = keywords["minLength"]?.double, Double(s.count) < min {
                problems.append("\(path): shorter than \(Int(min))")
            }
            if let max = keywords["maxLength"]?.double, Double(s.count) > max {
                problems.append("\(path): longer than \(Int(max))")
            }
            if case .string(let pattern)? = keywords["pattern"] {
                if let regex = try? NSRegularExpression(pattern: pattern) {
                    if regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) == nil {
                        problems.append("\(path): \(value.short) does not match \(pattern)")
                    }
                } else {
                    problems.append("\(path): the schema's pattern \(pattern) does not compile")
                }
            }
            if case .string("uri")? = keywords["format"] {
                if URL(string: s)?.scheme == nil { problems.append("\(path): \(value.short) is not a URI") }
            }
            if case .string("base64")? = keywords["contentEncoding"], Data(base64Encoded: s) == nil {
                problems.append("\(path): not base64")
            }
        }
        if case .object(let members) = value {
            let properties: [String: JSONValue]
            if case .object(let p)? = keywords["properties"] { properties = p } else { properties = [:] }
            if case .array(let required)? = keywords["required"] {
                for case .string(let name) in required where members[name] == nil {
                    problems.append("\(path): missing required \(name)")
                }
            }
            for (name, member) in members {
                if let propertySchema = properties[name] {
                    check(member, against: propertySchema, at: "\(path).\(name)", into: &problems)
                } else if let additional = keywords["additionalProperties"] {
                    if case .bool(false) = additional {
                        problems.append("\(path): unexpected property \(name)")
                    } else if case .object = additional {
                        check(member, against: additional, at: "\(path).\(name)", into: &problems)
                    }
                }
            }
        }
        if case .array(let items) = value, let itemSchema = keywords["items"] {
            for (index, item) in items.enumerated() {
                check(item, against: itemSchema, at: "\(path)[\(index)]", into: &problems)
            }
        }
        if case .array(let all)? = keywords["allOf"] {
            for sub in all { check(value, against: sub, at: path, into: &problems) }
        }
        if case .array(let any)? = keywords["anyOf"] {
            let passing = any.filter { sub in
                var scratch: [String] = []
                check(value, against: sub, at: path, into: &scratch)
                return scratch.isEmpty
            }
            if passing.isEmpty { problems.append("\(path): matches none of anyOf") }
        }
        if case .array(let one)? = keywords["oneOf"] {
            let passing = one.filter { sub in
                var scratch: [String] = []
                check(value, against: sub, at: path, into: &scratch)
                return scratch.isEmpty
            }
            if passing.count != 1 { problems.append("\(path): matches \(passing.count) of oneOf, not exactly 1") }
        }
    }
}

/// What the checker needs of KaspiPay's ``KaspiPay/JSONValue``, the one JSON value type: numbers
/// compare by value (JSON Schema's `1` and `1.0` are equal, and both are integers).
extension JSONValue {
    /// A member of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// A YAML value as parsed by Yams, as JSON.
    init(yaml: Any) throws {
        switch yaml {
        case is NSNull: self = .null
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .integer(Int64(i))
        case let d as Double: self = .number(d)
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(try a.map { try JSONValue(yaml: $0) })
        case let o as [String: Any]: self = .object(try o.mapValues { try JSONValue(yaml: $0) })
        case let o as [AnyHashable: Any]:
            var members: [String: JSONValue] = [:]
            for (key, value) in o { members["\(key)"] = try JSONValue(yaml: value) }
            self = .object(members)
        default: throw ContractChecker.CheckError("unsupported YAML value \(type(of: yaml))")
        }
    }

    /// The value of a number, whichever way it was written.
    var double: Double? {
        switch self {
        case .integer(let n): Double(n)
        case .number(let n): n
        default: nil
        }
    }

    /// Equality as JSON Schema sees it: numbers by value.
    func sameValue(as other: JSONValue) -> Bool {
        switch (self, other) {
        case (.integer, _), (.number, _): double != nil && double == other.double
        case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.sameValue(as: $1) }
        case (.object(let a), .object(let b)): a.count == b.count && a.allSatisfy { key, value in b[key].map(value.sameValue) ?? false }
        default: self == other
        }
    }

    func matches(type: String) -> Bool {
        switch (type, self) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("number", .integer), ("string", .string), ("array", .array),
            ("object", .object), ("integer", .integer):
            true
        case ("integer", .number(let n)): n.rounded() == n && abs(n) < 9e15
        default: false
        }
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number(let n): n.rounded() == n ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    var short: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .integer(let n): "\(n)"
        case .number(let n): n.rounded() == n && abs(n) < 9e15 ? "\(Int64(n))" : "\(n)"
        case .string(let s): "\"\(s.prefix(40))\""
        case .array: "[…]"
        case .object: "{…}"
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// A product's web pages: its Mustache templates and its stylesheet, read once at start from
/// the module's resources. Templates escape every value by default; pages share one layout
/// through Mustache's template inheritance (`{{<layout}}…{{/layout}}`).
package struct PageLibrary: Sendable {
    private let library: MustacheLibrary
    /// The stylesheets and other assets, by file name (`gateway.css`).
    package let assets: [String: String]
    /// The product's words in each language (`messages/<language>.json`).
    package let catalog: MessageCatalog

    /// Why the pages could not be loaded.
    package struct LoadError: Error, CustomStringConvertible {
        package let message: String
        package var description: String { "PAGES_UNAVAILABLE: \(message)" }
    }

    /// Loads the templates (`*.mustache`, named by their path without the extension), assets
    /// (`*.css`) and message catalogs (`messages/<language>.json`) from a module's resource
    /// folder.
    ///
    /// The folder is looked for in the resource bundle SwiftPM puts beside the executable
    /// (`<bundle>/<folder>`), then in the source tree (`sourceFolder`), which development
    /// builds and tests have; never through `Bundle.module`, which stops the process when
    /// the bundle is missing.
    ///
    /// - Parameters:
    ///   - bundle: the resource bundle's name, `<package>_<target>.resources`.
    ///   - folder: the resource folder inside it.
    ///   - sourceFolder: the same folder in the source tree.
    ///   - required: the templates the product renders; loading fails when one is missing, so
    ///     that a missing page stops the start instead of rendering empty.
    package init(bundle: String, folder: String, sourceFolder: String, required: [String]) throws(LoadError) {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent(bundle).appendingPathComponent(folder).path,
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(bundle).appendingPathComponent(folder).path,
            sourceFolder,
        ]
        var isDirectory: ObjCBool = false
        guard let root = candidates.first(where: { FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue })
        else {
            throw LoadError(
                message:
                    "the page templates were not found; install \(bundle) beside the executable (looked in \(candidates.joined(separator: ", "))).")
        }
        var templates: [String: MustacheTemplate] = [:]
        var assets: [String: String] = [:]
        let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        for file in files.sorted() {
            let path = root + "/" + file
            if file.hasSuffix(".mustache") {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw LoadError(message: "\(file) cannot be read.")
                }
                do { templates[String(file.dropLast(".mustache".count))] = try MustacheTemplate(string: text) } catch {
                    throw LoadError(message: "\(file) is not a valid template (\(error)).")
                }
            } else if file.hasSuffix(".json") {
                continue  // the message catalogs, read below
            } else if file.hasSuffix(".css") {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LoadError(message: "\(file) cannot be read.") }
                assets[(file as NSString).lastPathComponent] = text
            }
        }
        let missing = required.filter { templates[$0] == nil }
        guard missing.isEmpty else { throw LoadError(message: "\(root) lacks \(missing.joined(separator: ", ")).mustache.") }
        self.library = MustacheLibrary(templates: templates)
        self.assets = assets
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: root + "/messages", isDirectory: &isFolder), isFolder.boolValue {
            do { self.catalog = try MessageCatalog(folder: root + "/messages") } catch { throw LoadError(message: error.message) }
        } else {
            self.catalog = MessageCatalog()
        }
    }

    /// Whether a template of that name exists.
    package func has(_ template: String) -> Bool { library.getTemplate(named: template) != nil }

    /// Renders `template` with `context` (a struct, read through its stored properties, or
    /// a dictionary) in `locale`'s language: templates see `t` (the catalog: `{{#t}}key{{/t}}`),
    /// `lang` (`kk`, `ru`, `en`) and `languages` (the switcher's links) beside the context's own
    /// values.
    package func render(_ template: String, _ context: Any, locale: PageLocale = PageLocale(.en)) -> String {
        // The templates a product renders are checked when it loads them (`required`).
        library.render(LocalizedContext(inner: context, locale: locale, catalog: catalog), withTemplate: template) ?? ""
    }

    /// A page as an HTML answer, in `locale`'s language; remembers a language chosen with
    /// `?lang=` in a cookie.
    package func page(_ template: String, _ context: Any, locale: PageLocale = PageLocale(.en), status: HTTPResponse.Status = .ok) -> HTMLPage {
        var page = HTMLPage(status: status, html: render(template, context, locale: locale))
        page.headers[.contentLanguage] = locale.language.rawValue
        if let cookie = locale.cookie { page.headers[.setCookie] = cookie }
        return page
    }

    /// A message of the catalog, with `values` put in (see ``MessageCatalog/text(_:_:_:)``).
    package func text(_ key: String, _ language: PageLanguage, _ values: [String: String] = [:]) -> String {
        catalog.text(key, language, values)
    }

    /// Serves the assets at `/assets/<name>` (a day's caching; the names change with them).
    package func addAssetRoutes<Context: RequestContext>(to router: Router<Context>) {
        let assets = self.assets
        router.get("/assets/:name") { _, context in
            guard let name = context.parameters.get("name"), let text = assets[name] else { throw HTTPError(.notFound) }
            return Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=86400"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}

/// A page's values, with the words and language every page may use.
struct LocalizedContext: MustacheParent {
    let inner: Any
    let locale: PageLocale
    let catalog: MessageCatalog

    func child(named name: String) -> Any? {
        switch name {
        case "t": return catalog.lambda(locale.language)
        case "lang": return locale.language.rawValue
        case "languages": return locale.links
        case "switcher": return !locale.links.isEmpty
        default: break
        }
        if let parent = inner as? any MustacheParent { return parent.child(named: name) }
        guard let value = Mirror(reflecting: inner).children.first(where: { $0.label == name })?.value else { return nil }
        // An optional is its value, or nothing.
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first?.value
    }
}

/// A rendered HTML page, never cached, never framed by another site.
package struct HTMLPage: ResponseGenerator, Sendable {
    package var status: HTTPResponse.Status
    package var html: String
    package var headers: HTTPFields = [:]

    package init(status: HTTPResponse.Status = .ok, html: String) {
        self.status = status
        self.html = html
    }

    package func response(from request: Request, context: some RequestContext) -> Response { response }

    /// The page as a response (it needs no request to be made).
    package var response: Response {
        var fields: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
        if let frameOptions = HTTPField.Name("X-Frame-Options") { fields[frameOptions] = "DENY" }
        fields.append(contentsOf: headers)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension Request {
    /// Reads an HTML form (`application/x-www-form-urlencoded`) into `type`, through
    /// Hummingbird's form decoder.
    ///
    /// - Returns: nil when the body is too large, unreadable, or not the form expected.
    package func decodeForm<T: Decodable>(as type: T.Type, upTo limit: Int = 16 * 1024) async -> T? {
        guard let buffer = try? await body.collect(upTo: limit) else { return nil }
        return try? URLEncodedFormDecoder().decode(T.self, from: String(buffer: buffer))
    }
}

/// Query strings for links a page writes.
package enum QueryString {
    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// `a=1&b=x%20y`: every character but the unreserved ones percent-encoded.
    package static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    private static func escape(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "" }
}

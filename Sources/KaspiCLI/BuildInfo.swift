/// What `kaspi --version` prints: the version, and the commit a release package was built
/// from. `scripts/package` stamps `commit` in its own copy of the tree; a build from a
/// checkout says it is a development build.
enum BuildInfo {
    /// The release this tree is, or is working toward.
    static let version = "0.1.0"
    /// The commit a package was built from; nil in a development build.
    static let commit: String? = nil

    /// One line: `0.1.0 (commit 1a2b3c4d5e6f)` or `0.1.0 (development build)`.
    static var description: String {
        "\(version) (\(commit.map { "commit \($0)" } ?? "development build"))"
    }
}

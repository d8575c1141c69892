import ArgumentParser

/// The `kaspi` command: one binary for the SDK's calls, and later the sandbox, the gateway
/// and the demo.
public struct KaspiCommand: AsyncParsableCommand {
    /// The tool's name, help and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "kaspi",
        abstract: "KaspiKit: Kaspi Pay for Swift merchants.",
        // One line per paragraph: the help wraps them to the terminal itself.
        discussion: """
            Credentials come from flags or the environment: KASPI_TRADE_POINT_ID, KASPI_API_KEY, \
            and KASPI_BASE_URL (required: the guide's API has no host Kaspi confirmed; any server that follows the \
            contract, such as a local sandbox).

            Exit codes: 0 success; 1 the request failed (server or network); 2 invalid input or \
            configuration; 3 the payment was declined or cancelled; 4 waiting timed out.
            """,
        version: BuildInfo.description,
        subcommands: [
            DemoCommand.self, SandboxCommand.self, GatewayCommand.self, TriggerCommand.self, OrdersCommand.self, QRCommand.self, QRAPICommand.self,
            SignatureCommand.self, ListenCommand.self, EventsCommand.self,
        ]
    )

    /// Creates the command; ArgumentParser fills it from the command line.
    public init() {}
}

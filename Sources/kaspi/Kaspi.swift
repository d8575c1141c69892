import KaspiCLI

@main
struct Kaspi {
    static func main() async {
        await KaspiCommand.main()
    }
}

// libFuzzer's entry points. The binary is built with -parse-as-library and -sanitize=fuzzer, so
// libFuzzer owns `main`: it calls LLVMFuzzerInitialize once, then LLVMFuzzerTestOneInput for every
// input it makes. QUILL_FUZZ_TARGET names the parser under test (see FuzzTargets.all).
import Foundation

nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>>>) -> CInt {
    let name = ProcessInfo.processInfo.environment["QUILL_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.all.first(where: { $0.name == name }) else {
        let list = FuzzTargets.all.map { "  \($0.name.padding(toLength: 16, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n")
        FileHandle.standardError.write(Data("QUILL_FUZZ_TARGET must name one of:\n\(list)\n".utf8))
        exit(2)
    }
    do { try target.setUp() } catch {
        FileHandle.standardError.write(Data("fuzz target \(name) could not set up: \(error)\n".utf8))
        exit(2)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    selected?.run(bytes)
    return 0
}

// SwiftPM links an executable with `main` aliased to `QuillFuzz_main` (on Linux), which keeps
// libFuzzer's own `main` out; this one hands the command line to libFuzzer's driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("QuillFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return runDriver(&argc, &argv) { data, count in testOneInput(data, count) }
}

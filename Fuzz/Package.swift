// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for every parser of outside bytes. Built by `scripts/fuzz` with
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//     -Xcc -fsanitize=fuzzer-no-link,address
// One binary; QUILL_FUZZ_TARGET picks the parser (`quill-fuzz` lists them).
let package = Package(
    name: "QuillFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Quill", path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(name: "QuillFuzz", dependencies: [
            .product(name: "QuillCore", package: "Quill"),
            .product(name: "QuillTokenizers", package: "Quill"),
            .product(name: "QuillFormats", package: "Quill"),
            .product(name: "QuillHub", package: "Quill"),
            .product(name: "QuillModels", package: "Quill"),
            .product(name: "QuillTraining", package: "Quill"),
            .product(name: "QuillData", package: "Quill"),
            .product(name: "QuillEval", package: "Quill"),
            .product(name: "QuillServer", package: "Quill"),
            .product(name: "QuillReview", package: "Quill"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
    ]
)

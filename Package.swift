// swift-tools-version: 6.1
import PackageDescription

// Layers follow shared/DESIGN.md: a lower target never imports a higher one.
let package = Package(
    name: "Quill",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quill", targets: ["quill"]),
        .library(name: "QuillCore", targets: ["QuillCore"]),
        .library(name: "QuillTokenizers", targets: ["QuillTokenizers"]),
        .library(name: "QuillFormats", targets: ["QuillFormats"]),
        .library(name: "QuillHub", targets: ["QuillHub"]),
        .library(name: "QuillModels", targets: ["QuillModels"]),
        .library(name: "QuillData", targets: ["QuillData"]),
        .library(name: "QuillTraining", targets: ["QuillTraining"]),
        .library(name: "QuillEval", targets: ["QuillEval"]),
        .library(name: "QuillServer", targets: ["QuillServer"]),
        .library(name: "QuillReview", targets: ["QuillReview"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // -O3: SwiftPM builds C at -O2, where clang leaves the kernels' small per-row loops rolled
        // and their sums in memory (Q4_0 four rows at a time 59 GMAC/s at -O2, 125 at -O3; Q6_K
        // eight rows 102 against 120, on a Zen 4 core)
        .target(name: "CQuillKernels", cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),
        .target(name: "QuillCore", dependencies: [
            "CQuillKernels", .target(name: "COpenBLAS", condition: .when(platforms: [.linux])),
        ]),
        .target(name: "QuillTokenizers"),
        .target(name: "QuillHub", dependencies: ["QuillCore", "QuillTokenizers", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "QuillFormats", dependencies: ["QuillCore", "QuillTokenizers", "QuillHub"]),
        .target(name: "QuillModels", dependencies: ["QuillCore", "QuillFormats", "QuillTokenizers"]),
        .target(name: "QuillData", dependencies: ["QuillCore", "QuillTokenizers", "CZlib"]),
        .target(name: "QuillTraining", dependencies: ["QuillModels", "QuillData", "QuillEval", "QuillCore", "QuillFormats", "QuillTokenizers"]),
        .target(name: "QuillEval", dependencies: [
            "QuillCore", "QuillModels", "QuillData", "QuillFormats", "QuillTokenizers", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "QuillServer", dependencies: [
            "QuillModels", "QuillTokenizers", "QuillFormats",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "QuillReview", dependencies: [
            "QuillCore", "QuillServer", "QuillEval", "QuillModels", "QuillData", "QuillTokenizers",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        .executableTarget(
            name: "quill",
            dependencies: [
                "QuillCore", "QuillTokenizers", "QuillFormats", "QuillHub", "QuillModels", "QuillData", "QuillTraining", "QuillEval", "QuillServer", "QuillReview",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "QuillTokenizersTests", dependencies: ["QuillTokenizers", "QuillFormats"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillFormatsTests", dependencies: ["QuillFormats", "QuillTokenizers", "QuillCore", "QuillHub"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillModelsTests", dependencies: ["QuillModels", "QuillEval", "QuillCore", "QuillFormats", "QuillTokenizers"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillDataTests", dependencies: ["QuillData", "QuillTokenizers"],
                    resources: [.copy("Fixtures")]),
        // a plain socket HTTP client shared by the server and review tests
        .target(name: "QuillTestSupport", path: "Tests/QuillTestSupport"),
        .testTarget(name: "QuillServerTests", dependencies: ["QuillServer", "QuillModels", "QuillFormats", "QuillTokenizers", "QuillTestSupport"]),
        .testTarget(name: "QuillTrainingTests", dependencies: ["QuillTraining", "QuillModels", "QuillCore", "QuillFormats", "QuillData", "QuillTokenizers"]),
        .testTarget(name: "QuillEvalTests", dependencies: ["QuillEval", "QuillModels", "QuillData", "QuillFormats", "QuillTokenizers", "QuillCore"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillReviewTests", dependencies: ["QuillReview", "QuillCore", "QuillServer", "QuillModels", "QuillFormats", "QuillTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillCoreTests", dependencies: ["QuillCore", "QuillFormats"],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)

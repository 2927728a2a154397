// swift-tools-version: 6.0
import PackageDescription

// Layers follow shared/DESIGN.md: a lower target never imports a higher one.
// Targets for the later layers (QuillCore, QuillModels, ...) arrive with their issues.
let package = Package(
    name: "Quill",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quill", targets: ["quill"]),
        .library(name: "QuillCore", targets: ["QuillCore"]),
        .library(name: "QuillTokenizers", targets: ["QuillTokenizers"]),
        .library(name: "QuillFormats", targets: ["QuillFormats"]),
        .library(name: "QuillModels", targets: ["QuillModels"]),
        .library(name: "QuillData", targets: ["QuillData"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CQuillKernels"),
        .target(name: "QuillCore", dependencies: [
            "CQuillKernels", .target(name: "COpenBLAS", condition: .when(platforms: [.linux])),
        ]),
        .target(name: "QuillTokenizers"),
        .target(name: "QuillFormats", dependencies: ["QuillCore", "QuillTokenizers"]),
        .target(name: "QuillModels", dependencies: ["QuillCore", "QuillFormats", "QuillTokenizers"]),
        .target(name: "QuillData", dependencies: ["QuillTokenizers", "CZlib"]),
        .executableTarget(
            name: "quill",
            dependencies: [
                "QuillTokenizers", "QuillFormats", "QuillModels", "QuillData",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "QuillTokenizersTests", dependencies: ["QuillTokenizers", "QuillFormats"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillFormatsTests", dependencies: ["QuillFormats"]),
        .testTarget(name: "QuillModelsTests", dependencies: ["QuillModels", "QuillCore", "QuillFormats", "QuillTokenizers"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuillDataTests", dependencies: ["QuillData"]),
        .testTarget(name: "QuillCoreTests", dependencies: ["QuillCore", "QuillFormats"],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)

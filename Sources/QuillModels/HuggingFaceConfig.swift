import Foundation
import QuillTokenizers

/// A Hugging Face directory's `config.json`, read once and handed to the architecture that
/// its `model_type` names.
public struct HuggingFaceConfig {
    public let json: [String: Any]
    /// The file's path, for error messages.
    public let path: String

    public var modelType: String { json["model_type"] as? String ?? "?" }

    public static func read(_ directory: URL) throws -> HuggingFaceConfig {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileContents.data(atPath: url.path),
              let json = try JSONText.object(data) as? [String: Any] else {
            throw ModelError.missingKey(path: url.path, key: "config.json (missing or not a JSON object)")
        }
        return HuggingFaceConfig(json: json, path: url.path)
    }
}

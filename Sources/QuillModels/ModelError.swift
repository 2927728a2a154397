/// What can go wrong loading or running a model; each case names the file and the tensor or key.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case unsupportedArchitecture(path: String, found: String, supported: [String])
    case missingTensor(path: String, name: String)
    case shapeMismatch(path: String, name: String, expected: [Int], found: [Int])
    case missingKey(path: String, key: String)
    case unsupportedValue(path: String, key: String, found: String, supported: [String])
    case contextOverflow(tokens: Int, context: Int)
    case unsupportedTensorType(path: String, name: String, type: String)
    case tokenOutOfRange(id: Int32, vocabularySize: Int)
    case unreadable(path: String, reason: String)
    /// Nothing to run: an empty prompt where the tokenizer adds no BOS token to start from.
    case emptyPrompt

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(path, found, supported):
            return "\(path): architecture \"\(found)\" is not supported; supported: \(supported.joined(separator: ", "))"
        case let .missingTensor(path, name): return "\(path): tensor \(name) is missing"
        case let .shapeMismatch(path, name, expected, found):
            return "\(path): tensor \(name) has shape \(found), expected \(expected)"
        case let .missingKey(path, key): return "\(path): metadata key \(key) is missing"
        case let .unsupportedValue(path, key, found, supported):
            return "\(path): \(key) \"\(found)\" is not supported; supported: \(supported.joined(separator: ", "))"
        case let .contextOverflow(tokens, context):
            return "\(tokens) tokens do not fit the model's context of \(context); shorten the prompt or ask for truncation"
        case let .unsupportedTensorType(path, name, type): return "\(path): tensor \(name) has unsupported type \(type)"
        case let .tokenOutOfRange(id, size): return "token id \(id) is outside the vocabulary (size \(size))"
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case .emptyPrompt:
            return "the prompt is empty and the tokenizer adds no BOS token, so there is nothing to continue from; give a prompt"
        }
    }

    /// Refuses a layer count that the file cannot hold (every layer has several tensors), before
    /// anything is sized by it.
    public static func checkLayers(_ layers: Int, key: String, tensors: Int, path: String) throws {
        guard layers <= tensors else {
            throw ModelError.unreadable(path: path, reason: "\(key) says \(layers) layers, but the model holds only \(tensors) tensors")
        }
    }
}
